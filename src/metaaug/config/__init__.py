"""The set-up layer: the composed Hydra config -> plain objects.

Below the commands and above everything else: `rules` and `validate` check a config before any
work, `keys` names the key behind a library's refusal, `build` turns the config into datasets,
GANs, optimizers and evaluators, `saved` rebuilds a saved GAN from its run's recorded config,
`evaluate` measures image sets as `metaaug evaluate` and the API do.
"""
