"""PNG plots of training runs (matplotlib, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_run(history: dict, path: str, title: str, phase1_epochs: int | None = None) -> str:
    """Loss and accuracy per epoch; with ``phase1_epochs``, the temperature schedule and the phase
    boundary are marked. ``history`` is a Keras ``History.history`` dict. Returns ``path``."""
    epochs = list(range(1, len(history.get("loss", [])) + 1))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if key in history:
            ax_loss.plot(epochs, history[key], style, label=key)
    for key, style in (("accuracy", "-"), ("val_accuracy", "--"), ("val_f1", "-."), ("val_matthews", "-."),
                       ("val_pearson", "-."), ("val_spearman", ":")):
        if key in history:
            ax_acc.plot(epochs, history[key], style, label=key)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("loss (phase 1: annealed MSE; phase 2: cross-entropy)" if phase1_epochs else "loss")
    ax_acc.set_ylabel("top-1 accuracy" if "val_pearson" not in history else "correlation")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if phase1_epochs:
            ax.axvline(phase1_epochs + 0.5, color="k", linestyle=":", label="phase 1 | phase 2")
    if "label_weight" in history:  # Continuation-KD: ψ lies in [0, 1], as accuracies do
        ax_acc.plot(epochs, history["label_weight"], color="tab:gray", linestyle="--", label="label weight ψ")
    if "temperature" in history:
        ax_t = ax_acc.twinx()
        ax_t.step(epochs, history["temperature"], where="mid", color="tab:red", alpha=0.6, label="temperature T")
        ax_t.set_ylabel("temperature T", color="tab:red")
        ax_t.legend(loc="center right")
    ax_loss.legend(loc="best")
    ax_acc.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
