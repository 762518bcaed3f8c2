"""`eyeedit models`: list the effect models eyeedit can find."""

from __future__ import annotations

import json

import click
from rich.table import Table

from eyeedit.cli.ui import out, warn
from eyeedit.model.store import ModelError, list_models, open_model


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")
def models(as_json: bool) -> None:
    """List every available effect model: where it was found, size, region and metrics
    (--json adds what trained it: steps, seconds, device, CPU or GPU, precision, date).

    Models are looked up in this order: $EYEEDIT_MODELS, the user store
    ($XDG_DATA_HOME/eyeedit/models, default ~/.local/share/eyeedit/models), then the models
    shipped with eyeedit. The first one found for a name is the one `apply --effect` uses.
    """
    rows, seen = [], set()
    for entry in list_models():
        try:
            meta = open_model(entry.path).metadata  # the checks `apply` makes before loading
        except ModelError as exc:
            # Still the file `apply --effect` finds first for its name (and refuses): listed, so
            # that a working model it shadows is not shown as the one in use.
            warn(str(exc), label="broken")
            rows.append({"effect": entry.effect, "source": entry.source, "path": str(entry.path),
                         "active": entry.effect not in seen, "bytes": entry.path.stat().st_size,
                         "region": "-", "metrics": {}, "trained": {}, "broken": str(exc)})
            seen.add(entry.effect)
            continue
        region = meta.get("region", {})
        metrics = meta.get("metrics", {})
        rows.append({
            "effect": entry.effect, "source": entry.source, "path": str(entry.path),
            "active": entry.effect not in seen, "bytes": entry.path.stat().st_size,
            "region": f"{region.get('name')} {region.get('width')}x{region.get('height')}",
            "metrics": metrics,
            "trained": _trained(meta.get("training", {})),
        })
        seen.add(entry.effect)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="eyeedit models")
    for col in ("effect", "source", "size", "region", "validation", "path"):
        table.add_column(col, overflow="fold" if col == "path" else "ellipsis")
    for r in rows:
        val = "[red]broken: cannot be used[/]" if r.get("broken") else _validation_summary(r["metrics"])
        name = r["effect"] if r["active"] else f"[dim]{r['effect']} (shadowed)[/]"
        table.add_row(name, r["source"], f"{r['bytes'] / 1e6:.1f} MB", r["region"], val, r["path"])
    out.print(table)
    if not rows:
        out.print("No models found. Train one with `eyeedit train PAIRS --out runs/NAME --effect NAME`.")


# What a model file records of its training run (older files lack hardware and finished).
TRAINED_KEYS = ("steps", "seconds", "device", "hardware", "precision", "finished", "l1_scale")


def _trained(training: dict) -> dict:
    return {k: training[k] for k in TRAINED_KEYS if k in training} if isinstance(training, dict) else {}


def _validation_summary(metrics: dict) -> str:
    """The figure that says most about a model: masked PSNR beside doing nothing, when known."""
    model, identity = metrics.get("val_psnr_mask"), metrics.get("identity_psnr_mask")
    if isinstance(model, (int, float)) and isinstance(identity, (int, float)):
        return f"masked PSNR {model:.1f} dB ({model - identity:+.1f} over identity)"
    shown = [f"{k} {v:.3g}" for k, v in metrics.items() if isinstance(v, (int, float))][:3]
    return ", ".join(shown) or "-"
