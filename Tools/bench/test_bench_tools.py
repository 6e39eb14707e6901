"""Tests of the bench glue that needs no torch: python3 -m unittest discover -s Tools/bench"""

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
import workload as wl  # noqa: E402


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


class WorkloadTests(unittest.TestCase):
    def test_generator_is_swifts(self):
        # The first draws of SeededGenerator(seed: 1) in Generation.swift, printed by a Swift build.
        r = wl.Xoshiro256ss(1)
        self.assertEqual([r.next() for _ in range(3)],
                         [12966619160104079557, 9600361134598540522, 10590380919521690900])
        self.assertEqual(wl.bench_forward_ids(50264, 512)["1x512"][0][:5], [621, 42141, 29323, 40337, 38454])

    def test_windows_as_perplexity_swift(self):
        self.assertEqual(wl.windows(5, 512, 512), [(0, 5, 1)])
        # disjoint windows: the first token of each later window has no context and is not scored
        self.assertEqual(wl.windows(1091, 512, 512), [(0, 512, 1), (512, 1024, 1), (1024, 1091, 1)])
        self.assertEqual(wl.windows(10, 4, 2), [(0, 4, 1), (2, 6, 2), (4, 8, 2), (6, 10, 2)])

    def test_passages_rule(self):
        self.assertEqual(wl.read_passages("a\n b \n\n  \n\nc\r\nd\n"), ["a\n b", "c\nd"])

    def test_generated_is_deterministic_and_valid(self):
        with tempfile.TemporaryDirectory() as d:
            outs = []
            for name in ("a.json", "b.json"):
                p = os.path.join(d, name)
                with contextlib.redirect_stdout(io.StringIO()):
                    self.assertEqual(wl.main(["--out", p]), 0)
                outs.append(read(p))
            self.assertEqual(outs[0], outs[1])
            w = wl.load(os.path.join(d, "a.json"), vocab_size=50264)
            self.assertEqual([len(p) for p in w["passages"]], wl.HELD_OUT_LENGTHS)
            self.assertTrue(all(p[0] == wl.EOS for p in w["passages"]))
            self.assertGreater(w["edited_occurrences"], 0)
            self.assertEqual(len(w["edits"]["variants"]), 3)

    def test_load_names_the_field(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "w.json")
            with contextlib.redirect_stdout(io.StringIO()):
                wl.main(["--out", p])
            w = json.loads(read(p))
            w["passages"][3][7] = 60000
            write(p, json.dumps(w))
            with self.assertRaisesRegex(wl.WorkloadError, r"passages\[3\].*vocabulary"):
                wl.load(p, vocab_size=50264)
            w["passages"][3][7] = 1
            w["edits"]["variants"][2]["scales"] = [1.0]
            write(p, json.dumps(w))
            with self.assertRaisesRegex(wl.WorkloadError, r"variants\[2\]\.scales"):
                wl.load(p)


def lines(side, host="h", start=1000.0, sha="s", **secs):
    out = [{"side": side, "name": "meta", "host": host, "started_unix": start, "workload": {"sha256": sha}}]
    for name, (tokens, s) in secs.items():
        out.append({"side": side, "name": name.replace("__", "/"), "tokens": tokens, "seconds": s})
    return "".join(json.dumps(r) + "\n" for r in out)


class CompareTests(unittest.TestCase):
    def run_compare(self, swift, pytorch, *extra):
        with tempfile.TemporaryDirectory() as d:
            ps, pp = os.path.join(d, "s.jsonl"), os.path.join(d, "p.jsonl")
            write(ps, swift)
            write(pp, pytorch)
            buf, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
                rc = compare.main(["--swift", ps, "--pytorch", pp, *extra])
            return rc, buf.getvalue() + err.getvalue()

    def test_targets(self):
        sw = lines("swift", forward_1x512=(512, 1.0), forward_8x128=(1024, 3.0),
                   perplexity__base=(100, 1.0), perplexity__all=(400, 1.5))
        pt = lines("pytorch", forward_1x512=(512, 1.5), forward_8x128=(1024, 2.0),
                   perplexity__base=(100, 1.2), perplexity__all=(400, 4.8))
        rc, out = self.run_compare(sw, pt, "--strict")
        self.assertIn("PASS        forward 1x512", out)
        self.assertIn("FAIL        forward 8x128 >= 1.0x PyTorch: 0.67x", out)
        self.assertIn("PASS        perplexity base+3 edits >= 3x PyTorch's 4 passes: 3.20x", out)
        self.assertIn("PASS        Swift base+3 edits <= 1.6x Swift base alone: 1.50x", out)
        self.assertEqual(rc, 1)

    def test_refuses_other_machine_or_run(self):
        sw = lines("swift", forward_1x512=(512, 1.0))
        rc, out = self.run_compare(sw, lines("pytorch", host="elsewhere", forward_1x512=(512, 1.0)))
        self.assertEqual(rc, 2)
        self.assertIn("hosts differ", out)
        rc, out = self.run_compare(sw, lines("pytorch", start=1000.0 + 86400, forward_1x512=(512, 1.0)))
        self.assertEqual(rc, 2)

    def test_different_workloads_not_compared(self):
        sw = lines("swift", perplexity__all=(400, 1.0), perplexity__base=(100, 0.5))
        pt = lines("pytorch", sha="other", perplexity__all=(400, 9.0))
        rc, out = self.run_compare(sw, pt)
        self.assertIn("NOT CHECKED perplexity base+3 edits >= 3x PyTorch's 4 passes: different workloads", out)

    def test_one_file_per_process(self):
        with tempfile.TemporaryDirectory() as d:
            paths = [os.path.join(d, n) for n in ("a.jsonl", "b.jsonl", "c.jsonl")]
            write(paths[0], lines("swift", forward_1x512=(512, 1.0)) + '{"side": "swift", "name": "peak_rss", "bytes": 900000000}\n')
            write(paths[1], lines("swift", start=1100.0, forward_8x128=(1024, 2.0)) + '{"side": "swift", "name": "peak_rss", "bytes": 1000000000}\n')
            write(paths[2], lines("pytorch", forward_1x512=(512, 2.0)) + '{"side": "pytorch", "name": "peak_rss", "bytes": 2000000000}\n')
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                rc = compare.main(["--swift", paths[0], paths[1], "--pytorch", paths[2]])
            self.assertEqual(rc, 0)
            self.assertRegex(buf.getvalue(), r"peak_rss .* 1000 MB.*0\.50x")  # the larger of the two Swift peaks
            self.assertIn("PASS        forward 1x512 >= 1.0x PyTorch: 2.00x", buf.getvalue())
            write(paths[1], lines("swift", forward_1x512=(512, 1.0)))  # the same measurement twice
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                self.assertEqual(compare.main(["--swift", paths[0], paths[1]]), 2)
            self.assertIn("appears twice", err.getvalue())

    def test_swift_only(self):
        with tempfile.TemporaryDirectory() as d:
            ps = os.path.join(d, "s.jsonl")
            write(ps, lines("swift", forward_1x512=(512, 1.0)))
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                rc = compare.main(["--swift", ps, "--pytorch", os.path.join(d, "absent.jsonl"),
                                   "--pytorch-note", "no torch"])
            self.assertEqual(rc, 0)
            self.assertIn("PyTorch side not run: no torch", buf.getvalue())
            self.assertIn("NOT CHECKED forward 1x512", buf.getvalue())


if __name__ == "__main__":
    unittest.main()
