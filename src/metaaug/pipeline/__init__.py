"""The stages of `metaaug train`, each a function with typed inputs and outputs:

data and split (`commands.build.data`) -> models (`commands.build.gan`) -> initializations
(`initialize`: meta-train, and the baselines) -> adapt every arm to a target (`adapt`) ->
generate (`generate`) -> evaluate (`evaluate`) -> write images and report (`outputs`,
`report`).

`commands/train.py` composes them, once per target; later commands reuse the ones they need.
"""
