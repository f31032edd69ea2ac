"""The stages of `metaaug train`, each a function with typed inputs and outputs, sharing one
run context (`settings.RunContext`, built by `config/context.py`: stages 1-2, the data and
split, the models and what measures them):

3. `initialize`: the initializations (meta-train the main arm; the baselines)
4-6. `targets`: per target, adapt every arm (`adapt`), generate (`generate`), measure
   (`measure`), and write its GAN and grids (`outputs`)
7. `targets.write_images`: the synthetic image folders and the overview grid
8. `report.conclude`: mean ± sd over targets, metrics.json, the objective

`commands/train.py` composes them; `generate`, `evaluate` and the API reuse the ones they need.
"""
