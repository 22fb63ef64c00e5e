"""The Markdown report, for pasting into the province's written report to the People's Committee (Vietnamese)."""

from __future__ import annotations

from conftool.audit.reporting.data import ReportData
from conftool.audit.reporting.i18n import LABELS


def _pct(p: float | None) -> str:
    return f"{p:g} %" if p is not None else "–"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(data: ReportData, lang: str = "vi") -> str:
    i = 0 if lang == "vi" else 1

    def t(key: str) -> str:
        return LABELS[key][i]

    run = data.run
    lines = [f"# {t('title')} — {data.province}", "",
             f"{t('run')} {run.id} · {t('started')} {run.started_at.strftime('%Y-%m-%d %H:%M UTC')} · "
             f"{t('selector')}: {run.selector or t('all')}", "",
             f"## {t('kpi')}", "", f"| | {t('sites')} | % | {t('target')} |", "|---|---:|---:|---:|"]
    for k in data.kpis:
        extra = f" ({k.not_probed} {t('not_probed')})" if k.not_probed else ""
        mark = "✅" if k.met else "❌" if k.pct is not None else ""
        lines.append(f"| {t(k.key)} | {k.ok}/{k.total}{extra} | {_pct(k.pct)} {mark} | {k.target_pct:g} % |")
    lines += [f"| {t('compliance')} | | {_pct(data.compliance_pct)} | |",
              f"| {t('drift')} | {data.drift} | | |", "", f"## {t('districts')}", ""]
    head = [t("district"), t("audited"), *(t(k.key) for k in data.kpis), t("failing")]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d in data.districts:
        cells = [f"{d.name} ({d.id})", str(d.sites),
                 *(f"{d.kpis[k.key].ok}/{d.kpis[k.key].total}" for k in data.kpis), str(len(d.failing))]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", f"## {t('failures')}", ""]
    if not data.failures:
        lines.append(t("no_failures"))
    else:
        lines += [f"| {t('site')} | {t('district')} | {t('check')} | {t('detail')} | {t('fix')} |",
                  "|---|---|---|---|---|"]
        for f in data.failures:
            dev = f" [{f.device}]" if f.device else ""
            lines.append(f"| {_cell(f.site_name)} ({f.site}) | {_cell(f.district)} | {_cell(f.check + dev)} | "
                         f"{_cell(f.detail)} | {_cell(f.fix)} |")
    if len(data.trend) > 1:
        lines += ["", f"## {t('trend')}", "", "| " + t("run") + " | " + " | ".join(t(k.key) for k in data.kpis)
                  + " |", "|---|" + "---:|" * len(data.kpis)]
        for p in data.trend:
            lines.append(f"| {p.run} ({p.at.strftime('%Y-%m-%d %H:%M')}) | "
                         + " | ".join(_pct(p.pct.get(k.key)) for k in data.kpis) + " |")
    return "\n".join(lines) + "\n"
