"""The self-contained HTML report: inline CSS, inline SVG, a few lines of JS for the language switch, no CDN."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from conftool.audit.reporting import i18n, svg
from conftool.audit.reporting.availability import AvailabilityReport
from conftool.audit.reporting.data import ReportData
from conftool.inventory import Inventory

logger = logging.getLogger(__name__)

SERIES = (("lan", "#1565c0"), ("internet", "#6a1b9a"), ("dedicated", "#ef6c00"), ("meeting_ready", "#2e7d32"))


def label(key: str) -> Markup:
    """Both languages side by side; CSS shows one, the header button switches."""
    return Markup('<span class="vi">{}</span><span class="en">{}</span>').format(escape(i18n.vi(key)),
                                                                               escape(i18n.en(key)))


def _env() -> Environment:
    return Environment(loader=FileSystemLoader(str(Path(__file__).parent)), autoescape=select_autoescape(["html"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(data: ReportData, *, now: datetime | None = None) -> str:
    labels = [f"#{p.run}" for p in data.trend]
    series = [svg.Series(key, color, [p.pct.get(key) for p in data.trend]) for key, color in SERIES]
    seen = [v for sr in series for v in sr.values if v is not None]
    # zoom in when everything is near the target: 97 % and 100 % must not look alike on a 0-100 axis
    ymin = max(0.0, math.floor((min(seen) - 2) / 10) * 10) if seen else 0.0
    chart = svg.line_chart(labels, series, ymin=min(ymin, 90.0))
    tpl = _env().get_template("report.html")
    return tpl.render(data=data, t=label, L={k: v for k, v in i18n.LABELS.items()}, bar=svg.bar, chart=chart,
                      series=series, generated=(now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"))


def write(data: ReportData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data), encoding="utf-8")
    logger.info("wrote HTML report of run %s to %s", data.run.id, path)
    return path.resolve()


_AVAIL = """<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><title>{{ L.availability[0] }} {{ r.month }}</title>
<style>
body{font-family:"Noto Sans","DejaVu Sans",Arial,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin-bottom:20px}th,td{border-bottom:1px solid #eee;padding:5px 8px;text-align:left}
th{background:#f5f5f5}td.num{text-align:right}
body.en .vi{display:none}body:not(.en) .en{display:none}
button{float:right}
</style></head><body>
<button id="lang" type="button">{{ t("switch") }}</button>
<h1>{{ t("availability") }} — {{ province }} — {{ t("month") }} {{ r.month }}</h1>
<p>{{ t("runs") }}: {{ r.runs }}</p>
<table id="groups"><thead><tr><th>{{ t(by_label) }}</th><th>{{ t("links") }}</th><th>{{ t("available") }}</th>
<th>{{ t("quality") }}</th><th>{{ t("observed") }}</th></tr></thead><tbody>
{% for g in r.groups %}<tr data-key="{{ g.key }}"><td>{{ t(g.key) if g.key in kinds else g.key }}</td>
<td class="num">{{ g.links|length }}</td>
<td class="num">{{ bar(g.pct)|safe }} {{ pct(g.pct) }}</td><td class="num">{{ pct(g.quality_pct) }}</td>
<td class="num">{{ "%.1f"|format(g.observed_s / 3600) }} h</td></tr>
{% endfor %}</tbody></table>
<h2>{{ t("worst") }}</h2>
<table id="worst"><thead><tr><th>{{ t("site") }}</th><th>{{ t("kind") }}</th><th>{{ t("provider") }}</th>
<th>{{ t("available") }}</th></tr></thead><tbody>
{% for li in r.worst() %}<tr><td>{{ names.get(li.site, li.site) }} ({{ li.site }})</td>
<td>{{ t(li.kind) if li.kind in kinds else li.kind }}</td>
<td>{{ li.provider }}</td><td class="num">{{ pct(li.pct) }}</td></tr>
{% endfor %}</tbody></table>
<script>
document.getElementById("lang").addEventListener("click", function () {
  var en = !document.body.classList.contains("en");
  document.body.classList.toggle("en", en);
  document.documentElement.lang = en ? "en" : "vi";
});
</script>
</body></html>
"""


def render_availability(report: AvailabilityReport, inv: Inventory) -> str:
    tpl = _env().from_string(_AVAIL)

    def pct(p: float | None) -> str:
        return f"{p:.3f} %" if p is not None else "–"

    return tpl.render(r=report, t=label, L=i18n.LABELS, bar=svg.bar, pct=pct, province=inv.province.name,
                      by_label={"link": "kind", "provider": "provider", "district": "district"}[report.by],
                      names={s.id: s.full_name for s in inv.sites}, kinds=("lan", "internet", "dedicated"))
