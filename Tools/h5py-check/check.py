#!/usr/bin/env python3
"""Print the tree of a backpack results file (or any HDF5 file) as h5py sees it.

Usage: python3 check.py FILE.h5

Needs h5py (and numpy); install them into a virtual environment, e.g.
    python3 -m venv /tmp/h5venv && /tmp/h5venv/bin/pip install h5py
    /tmp/h5venv/bin/python Tools/h5py-check/check.py results.h5

Exits non-zero if the file cannot be read or a results file misses layout_version.
"""
import sys

import h5py
import numpy as np


def fmt_value(value, limit=6):
    if isinstance(value, bytes):
        return repr(value.decode("utf-8", "replace"))
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, np.ndarray):
        flat = value.ravel()
        items = [fmt_value(v.item() if isinstance(v, np.generic) else v) for v in flat[:limit]]
        more = ", ..." if flat.size > limit else ""
        return f"{value.dtype}{list(value.shape)} [{', '.join(items)}{more}]"
    if isinstance(value, np.generic):
        return f"{value.item()!r} ({value.dtype})"
    return repr(value)


def print_attrs(obj, indent):
    for key in sorted(obj.attrs.keys()):
        print(f"{indent}@{key} = {fmt_value(obj.attrs[key])}")


def describe_dataset(ds):
    parts = [f"{ds.dtype}", f"shape={ds.shape}"]
    if ds.chunks is not None:
        parts.append(f"chunks={ds.chunks}")
    if ds.compression:
        parts.append(f"{ds.compression}={ds.compression_opts}")
    if ds.shuffle:
        parts.append("shuffle")
    if h5py.check_string_dtype(ds.dtype) is not None:
        info = h5py.check_string_dtype(ds.dtype)
        parts.append(f"string({info.encoding}, {'vlen' if info.length is None else info.length})")
        data = ds.asstr()[()]
    else:
        data = ds[()]
    return ", ".join(parts) + " -> " + fmt_value(data)


def walk(group, indent=""):
    print_attrs(group, indent + "  ")
    for name, obj in group.items():  # creation order where tracked
        if isinstance(obj, h5py.Group):
            print(f"{indent}  {name}/")
            walk(obj, indent + "  ")
        elif isinstance(obj, h5py.Dataset):
            print(f"{indent}  {name}: {describe_dataset(obj)}")
            print_attrs(obj, indent + "    ")
        else:
            print(f"{indent}  {name}: {type(obj).__name__}")


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = argv[1]
    try:
        with h5py.File(path, "r") as f:
            print(f"{path} (h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version})")
            print("/")
            walk(f)
            if "runs" in f:
                if "layout_version" not in f.attrs:
                    print("error: /runs present but no layout_version attribute", file=sys.stderr)
                    return 1
                print(f"runs: {len(f['runs'])}")
    except (OSError, KeyError, ValueError) as e:
        print(f"error: cannot read {path}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
