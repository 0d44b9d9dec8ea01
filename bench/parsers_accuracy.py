"""Parser accuracy report over the public corpora in ``../shared/eval``.

Prints a table, then a last line of JSON (shares in %).  With ``LOGSHIP_EXTRA_LOGHUB``
set to a copy of github.com/logpai/loghub (kept outside this repository), loghub's
other systems are scored too; with ``LOGSHIP_EXTRA_INTEGRATIONS`` set to a copy of
github.com/elastic/integrations, its packages' pipeline test logs (expected documents
as the ingest pipelines produced them) are scored too.  The logic lives in
``tests/corpus/evaluate.py`` (shared with the corpus tests)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.corpus import evaluate


def main() -> None:
    if not evaluate.eval_dir().is_dir():
        sys.exit(f"eval corpora not found at {evaluate.eval_dir()} (set LOGSHIP_EVAL_DIR)")
    r = evaluate.report()
    c = r["rfc5424_counts"]
    print("RFC 5424 vectors")
    print(f"  valid lines, every stated field right : {c['valid_fields'][0]}/{c['valid_fields'][1]}")
    print(f"  invalid lines rejected by validator    : {c['invalid_rejected'][0]}/{c['invalid_rejected'][1]}")
    print(f"  valid lines accepted by validator      : {c['valid_accepted'][0]}/{c['valid_accepted'][1]}")
    print(f"RFC 3164 vectors (lenient, all stated fields): {r['rfc3164']}%")
    print(f"multiline grouping (fluent-bit cases): {r['multiline']}%")
    print("\napps/*.jsonl             valid rows right   invalid rows not accepted")
    for fmt, v in sorted(r["apps"].items()):
        ok, tot = v["valid"]
        iok, itot = v["invalid"]
        print(f"  {fmt:<28} {ok:>3}/{tot:<3} ({100 * ok / tot if tot else 100:5.1f}%)   "
              f"{iok}/{itot}")
    _loghub_table("loghub in ../shared/eval (2k lines each)", r["loghub"])
    if "loghub_extra" in r:
        _loghub_table("loghub systems not in ../shared/eval (LOGSHIP_EXTRA_LOGHUB)", r["loghub_extra"])
    if "integrations" in r:
        _integrations_table(r["integrations"])
    print(json.dumps(r))


def _loghub_table(title: str, rows: dict[str, dict[str, float | None]]) -> None:
    print(f"\n{title}\n  {'system':<22} timestamp   level     message   all three")
    for system, v in rows.items():
        lv = "n/a" if v["level"] is None else f"{v['level']:.1f}%"
        print(f"  {system:<22} {v['timestamp']:6.1f}%   {lv:>6}   {v['message']:6.1f}%   {v['all']:6.1f}%")


def _integrations_table(r: dict) -> None:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f}%"

    print("\nelastic/integrations pipeline tests (LOGSHIP_EXTRA_INTEGRATIONS; scored where the expected"
          " document has the field)\n"
          f"  {'package/data stream':<28} lines  timestamp       level           message")
    for key, v in r["streams"].items():
        cells = [f"{pct(v[k]):>6} of {v[k + '_n']:<4}" for k in ("timestamp", "level", "message")]
        extra = f"  ({v['level_unmapped']} level words unmapped)" if v["level_unmapped"] else ""
        skipped = f"  ({v['files_skipped']} files not paired)" if v["files_skipped"] else ""
        print(f"  {key:<28} {v['lines']:>5}  " + "   ".join(cells) + extra + skipped)
    t = r["total"]
    for how in ("line_weighted", "package_averaged"):
        print(f"  {'total, ' + how.replace('_', '-'):<28} {t['lines']:>5}  "
              + "   ".join(f"{pct(t[k][how]):>14}" for k in ("timestamp", "level", "message")))


if __name__ == "__main__":
    main()
