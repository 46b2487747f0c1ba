"""Pull benchmark: the same image (a few layers, tens of MB, made here) from the same loopback
registry, pulled by shoal's image store and by dockerd (`docker pull` through the Engine API at
unix:///var/run/docker.sock; dockerd counts 127.0.0.0/8 as an insecure registry, so plain HTTP works).

Each round pulls once on each side (the order alternating per round), and the image is removed on
both sides between runs, layers included, so every pull downloads and unpacks everything. A run is
timed from the request to the last progress message ("Status: Downloaded newer image …"). The table
gives medians with their spread and dockerd/shoal (above 1: shoal is faster).

    python bench/pull_bench.py [--rounds 5] [--layers 4] [--layer-mb 10]

Needs docker-registry (Debian's package) and a running dockerd. Prints results; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from harness import Comparison, LoadSampler, api_client, ratio_table

from shoal.images.service import ImageService
from shoal.testing.oci_images import Image, Pusher, make_image, make_layer
from shoal.testing.registry import Registry

SYSTEM_DOCKERD = "unix:///var/run/docker.sock"


def bench_image(layers: int, layer_mb: int) -> Image:
    """Half random bytes, half text per layer: gzip has real work to do both ways, as with real images."""
    made = []
    for index in range(layers):
        half = layer_mb << 19
        text = (f"layer {index} line of a config file or a script\n" * (half // 40 + 1)).encode()[:half]
        made.append(make_layer({f"data/{index}/random.bin": os.urandom(half), f"data/{index}/text.txt": text,
                                f"etc/layer-{index}": f"{index}\n"}))
    return make_image(made, config={"Cmd": ["/bin/true"]})


def pull_shoal(root: Path, ref: str) -> float:
    async def run() -> float:
        service = ImageService(root)
        started = time.perf_counter()
        messages = [message async for message in await service.pull(ref)]
        elapsed = time.perf_counter() - started
        if "error" in messages[-1] or not messages[-1]["status"].startswith("Status: Downloaded newer image"):
            raise RuntimeError(f"shoal pull failed: {messages[-1]}")
        await service.remove(ref, force=True)
        return elapsed

    try:
        return asyncio.run(run())
    finally:
        shutil.rmtree(root, ignore_errors=True)


def pull_dockerd(ref: str) -> float:
    client = api_client(SYSTEM_DOCKERD, timeout=600)
    started = time.perf_counter()
    last: dict[str, str] = {}
    for message in client.pull(ref, stream=True, decode=True):
        last = message
    elapsed = time.perf_counter() - started
    if "error" in last or not str(last.get("status", "")).startswith("Status: Downloaded newer image"):
        raise RuntimeError(f"dockerd pull failed: {last}")
    client.remove_image(ref, force=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--layer-mb", type=int, default=10)
    parser.add_argument("--dir", default="/var/tmp", help="where the registry and shoal's store live")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pull-bench-", dir=args.dir))
    registry = Registry(work / "registry", work / "storage")
    registry.start()
    try:
        image = bench_image(args.layers, args.layer_mb)
        Pusher(registry.base_url).image("bench/pull", "v1", image)
        ref = f"{registry.host}/bench/pull:v1"
        compressed = sum(len(layer.blob) for layer in image.layers) / 1e6
        unpacked = sum(len(layer.tar) for layer in image.layers) / 1e6
        print(f"image {ref}: {args.layers} layers, {compressed:.1f} MB compressed, {unpacked:.1f} MB unpacked")
        shoal_times: list[float] = []
        dockerd_times: list[float] = []
        with LoadSampler() as load:
            for round_index in range(args.rounds):
                sides = [("shoal", lambda i=round_index: pull_shoal(work / f"store-{i}", ref)),
                         ("dockerd", lambda: pull_dockerd(ref))]
                if round_index % 2:
                    sides.reverse()
                for name, pull in sides:
                    elapsed = pull()
                    (shoal_times if name == "shoal" else dockerd_times).append(elapsed)
                    print(f"round {round_index + 1}: {name} {elapsed:.2f} s")
        print()
        print(ratio_table([Comparison("pull (download + verify + unpack)", dockerd_times, shoal_times)], "dockerd"))
        print()
        print(load.summary())
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
