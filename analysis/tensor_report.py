"""What the manifest keeps of a tensor record (summary, nmf_banding) and how records link up (link_next). The
analyses that make a record are analysis/per_tensor/, one module each."""
from __future__ import annotations

from analysis.core.banding import picture_banding
from analysis.core.spec import SCHEMA  # noqa: F401  (defined there so the record cache does not import this module)


def summary(record: dict) -> dict:
    """The manifest entry's numbers for one tensor record: what a table of layers shows without opening it."""
    banding = record["banding"]
    out, n_in, h, w = record["shape"]
    entry = {"shape": record["shape"], "parameters": out * n_in * h * w,
             "R_layer": banding["R_layer"], "C_layer": banding["C_layer"],
             "R_baseline": banding.get("baseline_R"), "C_baseline": banding.get("baseline_C"),
             "nmf_error": record.get("nmf", {}).get("error"), "identity": record.get("identity", "none")}
    if "banding_delta" in record:
        entry["R_delta"] = record["banding_delta"]["R_layer"]
        entry["C_delta"] = record["banding_delta"]["C_layer"]
    entry.update(nmf_banding(record))
    return entry


def nmf_banding(record: dict) -> dict:
    """The articles' banding score: R and C of the layer's NMF pictures, pooled over its neurons (`R_nmf`, `C_nmf`;
    `_delta` for the pictures of W - W_init). Derived from the stored pictures, so a cached record needs no rerun."""
    out = {}
    for key, suffix in (("nmf", ""), ("nmf_delta", "_delta")):
        if isinstance(record.get(key), dict) and "rgb" in record[key]:
            scores = picture_banding(record[key]["rgb"])
            out["R_nmf" + suffix], out["C_nmf" + suffix] = scores["R_layer"], scores["C_layer"]
    return out


def link_next(entries: list[dict], blocks: list[dict] = ()) -> None:
    """Set each manifest entry's `next`: the tensor whose input channels are this tensor's output neurons.

    A block or span feeds the block tensor read from its last block (`source` == its `layer`). A conv kernel that is
    the last conv of a block (`blocks`: the manifest's `{name, convs}`) feeds the block tensor read from that block,
    when the channel counts agree (a concatenation's last branch is only a slice of its block's output); any other
    kernel feeds the next kernel in forward order whose input count equals its output count; anything else: None.
    """
    last_conv_of = {b["convs"][-1]: b["name"] for b in blocks if b.get("convs")}
    for i, entry in enumerate(entries):
        entry["next"] = None
        if entry["kind"] in ("block", "span"):
            entry["next"] = _block_read_from(entries, entry["layer"], exclude=entry)
        elif entry["kind"] == "kernel":
            block = last_conv_of.get(entry["layer"])
            read = _block_read_from(entries, block, channels=entry["shape"][0]) if block else None
            entry["next"] = read or next((e["id"] for e in entries[i + 1:] if e["kind"] == "kernel"
                                          and e["shape"][1] == entry["shape"][0]), None)


def _block_read_from(entries: list[dict], source: str, *, exclude: dict | None = None,
                     channels: int | None = None) -> str | None:
    """The id of the block tensor whose `source` is `source` (and that reads `channels` inputs), or None."""
    return next((e["id"] for e in entries if e["kind"] == "block" and e.get("source") == source and e is not exclude
                 and (channels is None or e["shape"][1] == channels)), None)
