from pipeline.datasets import load_dataset
from pipeline.record import Dataset, Object, Rejected, Sample, Source, save_dataset


def test_sample_json_round_trip(tmp_path):
    s = Sample(id="a/b.png", image="images/x.png", width=10, height=8, channels=3, label="cat",
               objects=(Object("cat", (1.0, 2.0, 5.5, 7.0), ((1.0, 2.0, 5.5, 2.0, 3.0, 7.0),)),),
               split="train", source=Source("voc", "b.png", "/src", "b.xml"), pixel_hash="ff",
               notes=("exif-transposed:6",))
    assert Sample.from_json(s.to_json()) == s
    save_dataset(tmp_path, [s], ["cat"], [Rejected("bad.png", "not-an-image", "x")])
    ds = load_dataset(tmp_path)
    assert ds == Dataset(tmp_path, (s,), ("cat",), (Rejected("bad.png", "not-an-image", "x"),))
    assert ds.kind == "detection"


def test_save_is_byte_stable(tmp_path):
    samples = [Sample(id=f"{i}", image=f"images/{i}.png", width=4, height=4, channels=1, label="x")
               for i in (3, 1, 2)]
    save_dataset(tmp_path / "a", samples, ["x"], [])
    save_dataset(tmp_path / "b", reversed(samples), ["x"], [])
    assert (tmp_path / "a/manifest.jsonl").read_bytes() == (tmp_path / "b/manifest.jsonl").read_bytes()


def test_source_json_carries_every_field():
    # to_json is spelled out for speed: a field added to Source must be added there too.
    import dataclasses

    full = Source(**{f.name: f"v-{f.name}" for f in dataclasses.fields(Source)})
    assert set(full.to_json()) == {f.name for f in dataclasses.fields(Source)}
    assert Source.from_json(full.to_json()) == full
