"""Draw the AAPE method as a box diagram: ``python docs/figures/method.py [OUT.png]``.

Writes ``docs/figures/method.png`` by default. Frozen CLIP parts are blue, what is trained and kept
at inference is green, what trains and is then dropped is orange with a dashed edge.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Patch  # noqa: E402

FROZEN, KEPT, TRAIN_ONLY, PLAIN = "#cfe2f3", "#d9ead3", "#fce5cd", "#ffffff"
INK, TRAIN_INK = "#333333", "#a65200"


class Box:
    """A rounded box with its centre (x, y) and half sizes; arrows attach to its edges."""

    def __init__(self, ax, x, y, text, colour, w, h=0.9, dashed=False):
        self.x, self.y, self.w, self.h = x, y, w / 2, h / 2
        ax.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.04,rounding_size=0.12",
                facecolor=colour, edgecolor=INK, linestyle="--" if dashed else "-", linewidth=1.2,
            )
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=10)

    def right(self):
        return self.x + self.w + 0.06, self.y

    def left(self):
        return self.x - self.w - 0.06, self.y

    def top(self, dx=0.0):
        return self.x + dx, self.y + self.h + 0.06

    def bottom(self, dx=0.0):
        return self.x + dx, self.y - self.h - 0.06


def _arrow(ax, start, end, label=None, dashed=False, colour=INK, where=(0.0, 0.08), ha="center"):
    ax.annotate(
        "", xy=end, xytext=start,
        arrowprops={"arrowstyle": "-|>", "color": colour, "linewidth": 1.2, "linestyle": "--" if dashed else "-",
                    "shrinkA": 0, "shrinkB": 0},
    )
    if label:
        mx, my = (start[0] + end[0]) / 2 + where[0], (start[1] + end[1]) / 2 + where[1]
        ax.text(mx, my, label, ha=ha, va="bottom", fontsize=9.5, style="italic", color=colour)


def draw(out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(13, 6.2))
    ax.set_xlim(0, 16)
    ax.set_ylim(-0.3, 7.2)
    ax.axis("off")

    # Inference (top row): image -> x -> h(x) -> fused class weights -> logits.
    image = Box(ax, 1.1, 5.6, "image", PLAIN, w=1.6)
    enc_img = Box(ax, 3.9, 5.6, "CLIP image\nencoder", FROZEN, w=2.0)
    gen = Box(ax, 7.0, 5.6, "generator h\nd → 32 → d", KEPT, w=2.0)
    fusion = Box(ax, 10.6, 5.6, "fusion g\nw_k(x) = w_k + g([w_k ; h(x)])", KEPT, w=3.5)
    logits = Box(ax, 14.6, 5.6, "logits\ncos(x, w_k(x)) / τ", PLAIN, w=2.2)
    names = Box(ax, 12.2, 3.6, "class names → template\n→ CLIP text encoder → w_k", FROZEN, w=3.2)
    _arrow(ax, image.right(), enc_img.left())
    _arrow(ax, enc_img.right(), gen.left(), "x")
    _arrow(ax, gen.right(), fusion.left(), "h(x)")
    _arrow(ax, fusion.right(), logits.left())
    _arrow(ax, names.top(), fusion.bottom(1.6))
    ax.text(7.0, 6.35, "h(x) is the AAPE", ha="center", fontsize=9.5, style="italic")

    # Training only (bottom row): the image's prompts -> aggregator -> p^a, the distillation target.
    prompts = Box(ax, 1.6, 1.0, "prompts of the image\n(LLM descriptions of\nits class, or captions)", PLAIN,
                  w=2.9, h=1.2)
    enc_txt = Box(ax, 4.6, 1.0, "CLIP text\nencoder", FROZEN, w=2.0)
    agg = Box(ax, 7.6, 1.0, "aggregator\nattention over [q ; P]\nq = mean(P) + W_x x", TRAIN_ONLY, w=2.8, h=1.2,
              dashed=True)
    _arrow(ax, prompts.right(), enc_txt.left(), dashed=True, colour=TRAIN_INK)
    _arrow(ax, enc_txt.right(), agg.left(), "P", dashed=True, colour=TRAIN_INK)
    _arrow(ax, enc_img.bottom(), agg.top(-1.0), "x", dashed=True, colour=TRAIN_INK, where=(-0.3, 0.0))
    _arrow(ax, agg.top(-0.2), gen.bottom(0.4), dashed=True, colour=TRAIN_INK)
    ax.text(7.55, 3.3, "p^a, a stop-gradient target:\nL_distill = λ ‖h(x) − p^a‖²", fontsize=9.5,
            color=TRAIN_INK, va="center")
    ax.text(9.25, 1.0, "L_reward: maximise\ns · max(cos(x, p^a), 0)", fontsize=9.5, color=TRAIN_INK, va="center")

    ax.text(0.2, 6.95, "Training: L_task + λ L_distill + L_reward, CLIP frozen.   "
            "Inference: the top row only (no prompts, no LLM, no aggregator).", fontsize=10.5, weight="bold")
    ax.legend(
        handles=[
            Patch(facecolor=FROZEN, edgecolor=INK, label="frozen CLIP"),
            Patch(facecolor=KEPT, edgecolor=INK, label="trained, kept at inference"),
            Patch(facecolor=TRAIN_ONLY, edgecolor=INK, linestyle="--", label="trained, training only"),
        ],
        loc="lower right", fontsize=9.5, frameon=False,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return out


if __name__ == "__main__":
    draw(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("method.png"))
