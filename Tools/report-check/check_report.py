"""Checks `backpack report --html`'s attribution section in a headless browser, against the run.

    check_report.py --results RUN.h5 --report REPORT.html --browser CHROMIUM --screenshots DIR

Reads the run with h5py (independently of the Swift reader) and renders the report in Chromium
(Playwright driving Debian's chromium-headless-shell). One PASS/FAIL line per check:

  1. every pronoun suite that stored an attribution has one heatmap per variant that is not a
     sweep point (base and the single edits), and none for sweep points;
  2. every heatmap cell carries the stored number (noun_attribution_senses / _context) of its
     variant, noun and column, exactly, and the heatmap's scale is the largest |number| of the
     suite's heatmaps;
  3. in the screenshot, the pixel at the centre of every cell has the colour of its number on the
     report's diverging scale (white at 0, (178, 24, 43) at +scale, (33, 102, 172) at -scale,
     linear per channel), within 2 per channel: the heatmap shows the numbers;
  4. what an edit removed is visible: every cell that is exactly 0 for an edit where base is not
     (a sense the edit zeroed) is pure white in the edit's heatmap and coloured in base's (where
     base's number is over 1 % of the scale), and at
     least one such cell exists for remove-gender-sense on pronoun-bias; on pronoun-retention the
     profession edits leave every sense cell of the definitional nouns as base's;
  5. the noun / context share bar of every variant has the width of its share of |attribution|
     (attribution_noun_mean_abs / (noun + context)), within a pixel.

Screenshots of each attribution section go to DIR (attribution-<suite>.png). Exit 0 when all
pass, 1 otherwise.
"""
import argparse
import math
import sys

import h5py
import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

POSITIVE = (178, 24, 43)   # the pair's first word (he)
NEGATIVE = (33, 102, 172)  # the second (she)
TOLERANCE = 2              # per channel, 0-255

failures = 0


def check(ok, label, detail=""):
    global failures
    print(("PASS " if ok else "FAIL ") + label + (f": {detail}" if detail else ""))
    if not ok:
        failures += 1


def expected_color(value, scale):
    t = min(1.0, abs(value) / scale)
    end = POSITIVE if value >= 0 else NEGATIVE
    return tuple(math.floor(255 - (255 - e) * t + 0.5) for e in end)   # halves away from 0, as Swift's rounded()


def read_run(path):
    """{suite: {variant: (k, nouns, noun_senses (N, k), noun_context (N), share)}}, sweep variants."""
    suites, sweeps, order = {}, set(), []
    with h5py.File(path, "r") as f:
        runs = list(f["runs"])
        if len(runs) != 1:
            raise SystemExit(f"{path}: expected one run, found {len(runs)}")
        run = f["runs"][runs[0]]
        for variant in run:
            group = run[variant]
            order.append(variant)
            if "grid_axes" in group.attrs and len(group.attrs["grid_axes"]) > 0:
                sweeps.add(variant)
            for suite in group:
                s = group[suite]
                if "attribution_senses" not in s.attrs:
                    continue
                k = int(s.attrs["attribution_senses"])
                nouns = [n.decode() if isinstance(n, bytes) else n for n in s["nouns"][:]]
                senses = np.asarray(s["noun_attribution_senses"][:]).reshape(len(nouns), k)
                context = np.asarray(s["noun_attribution_context"][:])
                na, ca = float(s.attrs["attribution_noun_mean_abs"]), float(s.attrs["attribution_context_mean_abs"])
                suites.setdefault(suite, {})[variant] = (k, nouns, senses, context, na / (na + ca))
    return suites, sweeps, order


GEOMETRY = """() => {
  const out = [];
  for (const svg of document.querySelectorAll('svg.heatmap')) {
    for (const r of svg.querySelectorAll('rect.cell')) {
      const b = r.getBoundingClientRect();
      out.push({suite: svg.dataset.suite, variant: svg.dataset.variant, scale: svg.dataset.scale,
                noun: r.dataset.noun, column: r.dataset.column, value: r.dataset.value,
                x: b.x + window.scrollX + b.width / 2, y: b.y + window.scrollY + b.height / 2});
    }
  }
  const shares = [];
  for (const svg of document.querySelectorAll('svg.shares')) {
    const section = svg.previousElementSibling && svg.previousElementSibling.previousElementSibling;
    for (const r of svg.querySelectorAll('rect.share-noun')) {
      const c = r.nextElementSibling;
      shares.push({section: section ? section.id : '', variant: r.dataset.variant, share: r.dataset.share,
                   noun: r.getBoundingClientRect().width, context: c.getBoundingClientRect().width});
    }
  }
  const sections = [...document.querySelectorAll('h2[id^="attribution-"]')].map(h => {
    const b = h.getBoundingClientRect();
    return {id: h.id, y: b.y + window.scrollY};
  });
  return {cells: out, shares: shares, sections: sections, height: document.documentElement.scrollHeight};
}"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--browser", required=True)
    ap.add_argument("--screenshots", required=True)
    a = ap.parse_args()
    suites, sweeps, order = read_run(a.results)
    check(len(suites) >= 2, "the run stored attribution for both pronoun suites", ", ".join(sorted(suites)))

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.browser, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
        page.goto("file://" + a.report)
        geometry = page.evaluate(GEOMETRY)
        shot = a.screenshots.rstrip("/") + "/report.png"
        page.screenshot(path=shot, full_page=True)
        browser.close()
    image = Image.open(shot).convert("RGB")
    for i, s in enumerate(geometry["sections"]):
        bottom = geometry["sections"][i + 1]["y"] if i + 1 < len(geometry["sections"]) else s["y"] + 1400
        image.crop((0, max(0, int(s["y"]) - 8), image.width, min(image.height, int(bottom)))).save(
            f"{a.screenshots.rstrip('/')}/{s['id']}.png")

    cells = geometry["cells"]
    for suite, variants in sorted(suites.items()):
        charted = [v for v in order if v in variants and v not in sweeps]
        drawn = sorted({c["variant"] for c in cells if c["suite"] == suite})
        check(sorted(charted) == drawn, f"{suite}: a heatmap for each of {len(charted)} variants, none for {len(sweeps)} sweep points",
              f"drawn {drawn}")
        scale = max(max(np.abs(variants[v][2]).max(), np.abs(variants[v][3]).max()) for v in charted)
        mine = [c for c in cells if c["suite"] == suite]
        scales = {float(c["scale"]) for c in mine}
        check(scales == {scale}, f"{suite}: one colour scale, the largest |attribution| {scale:.6g}", f"report {sorted(scales)}")

        wrong_value, wrong_pixel, worst, seen = [], [], 0, set()
        for c in mine:
            k, nouns, senses, context, _ = variants[c["variant"]]
            n = nouns.index(c["noun"])
            stored = context[n] if c["column"] == "context" else senses[n, int(c["column"])]
            seen.add((c["variant"], c["noun"], c["column"]))
            if float(c["value"]) != stored:
                wrong_value.append((c["variant"], c["noun"], c["column"], c["value"], stored))
            want = expected_color(stored, scale)
            got = image.getpixel((int(c["x"]), int(c["y"])))
            d = max(abs(x - y) for x, y in zip(got, want))
            worst = max(worst, d)
            if d > TOLERANCE:
                wrong_pixel.append((c["variant"], c["noun"], c["column"], got, want))
        expected_cells = sum(len(variants[v][1]) * (variants[v][0] + 1) for v in charted)
        check(len(seen) == expected_cells == len(mine), f"{suite}: every noun x (k senses + context) cell drawn once",
              f"{len(mine)} cells, {expected_cells} expected")
        check(not wrong_value, f"{suite}: every cell carries its stored number exactly", str(wrong_value[:3]))
        check(not wrong_pixel, f"{suite}: every cell's pixel has its number's colour (max channel difference {worst}, tolerance {TOLERANCE})",
              str(wrong_pixel[:3]))

        # What an edit removed: exact zeros where base is not zero are white, coloured in base.
        base = charted[0]
        pixel = {(c["variant"], c["noun"], c["column"]): image.getpixel((int(c["x"]), int(c["y"]))) for c in mine}
        for v in charted[1:]:
            k, nouns, senses, _, _ = variants[v]
            removed = [(nouns[n], str(l)) for n in range(len(nouns)) for l in range(k)
                       if senses[n, l] == 0 and variants[base][2][n, l] != 0]
            # In base, a number under 1 % of the scale is white too (a channel moves by < 1).
            visible = {(nouns[n], str(l)) for n in range(len(nouns)) for l in range(k)
                       if abs(variants[base][2][n, l]) > 0.01 * scale}
            bad = [(noun, l) for noun, l in removed
                   if pixel[(v, noun, l)] != (255, 255, 255) or ((noun, l) in visible and pixel[(base, noun, l)] == (255, 255, 255))]
            if suite == "pronoun-bias" and v == "remove-gender-sense" or removed:
                check(bool(removed) and not bad, f"{suite}: the {len(removed)} cells {v} zeroed are white, and coloured in base",
                      str(bad[:3]))
            elif suite == "pronoun-retention" and v in ("remove-gender-sense", "debias-project-gender"):
                # The profession edits leave the definitional nouns' senses alone: their cells are base's.
                same = all(pixel[(v, noun, str(l))] == pixel[(base, noun, str(l))] for noun in nouns for l in range(k))
                check(same and np.array_equal(senses, variants[base][2]),
                      f"{suite}: {v} leaves every definitional noun's sense cell as base's (numbers and pixels)")

    shares = geometry["shares"]
    for suite, variants in sorted(suites.items()):
        charted = [v for v in order if v in variants and v not in sweeps]
        mine = [s for s in shares if s["section"] == f"attribution-{suite}"]
        check(sorted(s["variant"] for s in mine) == sorted(charted), f"{suite}: a noun / context bar per variant")
        bad = []
        for s in mine:
            share = variants[s["variant"]][4]
            width = s["noun"] + s["context"]
            if abs(s["noun"] - share * width) > 1.0 or abs(float(s["share"]) - share) > 1e-12:
                bad.append((s["variant"], s["noun"], share * width))
        check(not bad, f"{suite}: each bar's noun part is its share of |attribution| within a pixel", str(bad[:3]))

    print(f"report-check: {'all passed' if failures == 0 else f'{failures} failed'}; screenshots in {a.screenshots}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
