"""Compare detection models on a detection version: train, then COCO-score the test split.

    python benchmarks/detect_candidates.py VERSION OUT MODEL EPOCHS ['{"threads": 1, ...}']

The recipe below plus the JSON overrides; prints one JSON line (seconds per epoch,
val mAP50 per epoch, test mAP50 and mAP), scored by ``pipeline.train.detscore``. docs/benchmarks.md ("Detectors on the trees set")
ran it on crude 400x400 tiles of the deepforest wheel's images (VERSION built by a
throwaway script: train on tiles of three images, val/test on tiles of the fourth).
"""

import json
import sys
import time
from pathlib import Path


def main():
    import torch

    from pipeline.config import TrainParams
    from pipeline.torchdata import open_splits
    from pipeline.train import checkpoint as ckpt_io
    from pipeline.train.detect import score_split
    from pipeline.train.loop import train

    version, out, model, epochs = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    out.mkdir(parents=True, exist_ok=True)
    kw = dict(model=model, epochs=epochs, batch_size=4, optimizer="adamw", lr=1e-3, weight_decay=1e-4,
              schedule="cosine", warmup_epochs=0.5, grad_clip=10.0, freeze_epochs=0, backbone_lr=0.3, threads=2)
    kw.update(extra)
    t0 = time.perf_counter()
    hist = train(version, TrainParams(**kw), out / "m.pt", out / "tb", out / "t.json", out / "c.csv")
    secs = time.perf_counter() - t0
    m, ckpt = ckpt_io.load_model(out / "m.pt")
    _, _, box, _ = score_split(m, open_splits(version)["test"], torch.device("cpu"), ckpt["classes"], False)
    print(json.dumps({"model": model, "epochs": epochs, "extra": extra, "train_s": round(secs, 1),
                      "epoch_s": [round(h.seconds, 1) for h in hist], "val_map50": [round(h.val_map50, 3) for h in hist],
                      "test_map50": round(box.map50, 3), "test_map": round(box.map, 3)}), flush=True)


if __name__ == "__main__":
    main()
