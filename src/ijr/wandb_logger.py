"""Weights & Biases logging (``logger=wandb``): offline by default, one W&B run per run directory.

The W&B run id is kept in ``<run_dir>/wandb_id`` so a resumed or requeued job continues the same
W&B run; the flattened resolved config is sent as the run config; ``finish_wandb`` is called in
``train``'s ``finally``.
"""

from __future__ import annotations

import secrets

from omegaconf import DictConfig, OmegaConf

from ijr.rundir import RunDir


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def make_wandb_logger(cfg: DictConfig, run: RunDir):
    from pytorch_lightning.loggers import WandbLogger

    id_file = run.path / "wandb_id"
    run_id = (
        id_file.read_text().strip() if id_file.exists() else f"{run.key}-{secrets.token_hex(4)}"
    )
    id_file.write_text(run_id)
    lc = cfg.logger
    logger = WandbLogger(
        project=lc.get("project", "ijr"),
        entity=lc.get("entity"),
        group=lc.get("group"),
        name=run.key,
        id=run_id,
        resume="allow",
        save_dir=str(lc.get("dir") or run.path),
        mode=lc.get("mode", "offline"),
        tags=list(cfg.get("tags") or []),
        config=flatten(OmegaConf.to_container(cfg, resolve=True)),
    )
    return logger


def finish_wandb(exit_code: int = 0) -> None:
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish(exit_code=exit_code)
