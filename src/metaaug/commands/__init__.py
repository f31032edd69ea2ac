"""One module per `metaaug` command, each exposing `main()` (a Hydra app, or for summarize a
plain argparse program).

The registry holds the one-line help too, so `metaaug --help` answers without importing torch.
"""

# Hydra's flags that print something and run no job: every rank of a distributed run obeys
# them alone
NO_JOB_FLAGS = ("-c", "--cfg", "-h", "--help", "--hydra-help", "-i", "--info", "-sc",
                "--shell-completion")  # fmt: skip

# the commands that are Hydra apps, each composed from the config of its name (conf/<name>.yaml)
HYDRA_APPS = ("train", "generate", "evaluate", "fewshot")
MULTIRUN_FLAGS = ("-m", "--multirun")

# name -> the one-line help; the command lives in metaaug.commands.<name>
COMMANDS: dict[str, str] = {
    "train": "meta-train a GAN initialization, fine-tune it on a few-shot target, write "
    "synthetic images and metrics",
    "generate": "sample a saved generator (finetuned, or meta_init adapted to your shots) into "
    "a folder",
    "evaluate": "FID, KID, IS, precision/recall, memorization, fidelity between two image folders",
    "fewshot": "N-way K-shot accuracy on held-out classes with each augmentation arm, paired "
    "against none",
    "summarize": "one row per trial of a sweep (metrics, parameters, status): summary.csv/.md/.png",
}
