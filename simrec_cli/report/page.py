"""The report as one HTML page: plain markup, inline CSS and SVG charts, pictures from `images/`, no script.

`render_page` reads only the report dictionary (the content of report.json), so the page can show nothing
the file does not hold.
"""

from __future__ import annotations

from html import escape

from simrec_cli.report.charts import bar_chart, histogram_chart, line_chart

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1d2330; background: #fafbfc; }
header, main { max-width: 1240px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 18px; }
h1 { font-size: 22px; margin: 0 0 6px; }
h2 { font-size: 19px; border-bottom: 2px solid #d9dee6; padding-bottom: 4px; margin-top: 34px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: #555; font-size: 13px; line-height: 1.5; }
.note { background: #fff6dc; border-left: 4px solid #e0b030; padding: 6px 10px; font-size: 13px; }
nav a { margin-right: 12px; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0 8px; background: #fff; }
th, td { border: 1px solid #d9dee6; padding: 3px 8px; }
th { background: #eef1f5; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; flex-wrap: wrap; gap: 10px 28px; }
.card { background: #fff; border: 1px solid #e3e7ed; border-radius: 6px; padding: 8px 12px; }
.card p { margin: 2px 0 6px; color: #666; font-size: 12px; max-width: 440px; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px; }
figure { margin: 0; background: #fff; border: 1px solid #e3e7ed; border-radius: 6px; padding: 6px; }
figure img { width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; margin-top: 4px; }
.legend span { display: inline-block; width: 12px; height: 4px; margin: 0 4px 2px 10px; }
"""
EMPTY = "–"


def _number(value: float | None, digits: int = 2) -> str:
    return EMPTY if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{escape(cell)}</td>' if index >= numeric_from else f"<td>{escape(cell)}</td>"
            for index, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metrics_table(metrics: dict) -> str:
    rows = [
        ["expressions", f"{metrics['count']:,}"],
        ["Acc@0.5", _number(metrics["acc50"])],
        ["Acc@0.75", _number(metrics["acc75"])],
        ["mean IoU", _number(metrics["mean_iou"])],
    ]
    if metrics.get("mask_miou") is not None:
        rows += [["mask mIoU", _number(metrics["mask_miou"])], ["mask oIoU", _number(metrics["mask_oiou"])]]
        rows += [[f"mask Prec@{key}", _number(value)] for key, value in metrics["mask_precision"].items()]
        rows += [["box/mask inconsistency", _number(metrics["inconsistency"])]]
    return _table(["metric", "value"], rows)


def _breakdown(item: dict, split: str) -> str:
    buckets = item["buckets"]
    rows = [
        [b["name"], f"{b['count']:,}", _number(b["acc50"]), _number(b["acc75"]), _number(b["mean_iou"])]
        for b in buckets
    ]
    chart = bar_chart(
        [b["name"] for b in buckets],
        [b["acc50"] for b in buckets],
        [f"{_number(b['acc50'])} (n={b['count']:,})" for b in buckets],
    )
    anchor = f"{escape(split)}-{escape(item['key'])}"
    return (
        f'<div class="card" id="{anchor}"><h3>{escape(item["title"])}</h3><p>{escape(item["note"])}; '
        f"bars: Acc@0.5</p>{_table(['bucket', 'count', 'Acc@0.5', 'Acc@0.75', 'mean IoU'], rows)}{chart}</div>"
    )


def _taxonomy(taxonomy: dict, count: int, protocol: dict) -> str:
    classes = taxonomy["classes"]
    rows = [[c["name"], f"{c['count']:,}", _number(c["share"])] for c in classes]
    chart = bar_chart(
        [c["name"] for c in classes], [c["share"] for c in classes], [f"{_number(c['share'])} %" for c in classes]
    )
    miss, hit = escape(protocol["miss_rule"]), escape(protocol["hit_rule"])
    return (
        f'<div class="card"><h3>Miss taxonomy</h3><p>{taxonomy["misses"]:,} misses ({miss}) of {count:,} '
        f"expressions. Wrong object: the box covers another object of the image ({hit}). Right object, loose "
        "box: IoU with the target at least 0.1, not a hit, and no other object covered. Background: the rest.</p>"
        f"{_table(['class', 'count', 'share of misses %'], rows)}{chart}</div>"
    )


def _figure(picture: dict) -> str:
    caption = f"{escape(picture['expression'])} · IoU {picture['iou']:.2f}"
    if picture["class"] != "hit":
        caption += f" · {escape(picture['class'])}"
    alt = escape(f"{picture['expression']} (image {picture['image_id']})")
    return f'<figure><img src="{escape(picture["file"])}" alt="{alt}"><figcaption>{caption}</figcaption></figure>'


def _gallery(title: str, pictures: list[dict]) -> str:
    if not pictures:
        return f"<h3>{escape(title)}</h3><p class='meta'>none</p>"
    return f"<h3>{escape(title)}</h3><div class='gallery'>{''.join(_figure(p) for p in pictures)}</div>"


def _split_section(split: dict, protocol: dict) -> str:
    metrics = split["metrics"]
    histogram = split["iou_histogram"]
    name = escape(split["split"])
    rules = f"boxes in original image pixels; protocol {protocol['name']}: {protocol['description']}"
    parts = [
        f'<section id="split-{name}"><h2>{name}</h2><div class="cards">',
        f'<div class="card"><h3>Metrics</h3><p>{escape(rules)}</p>{_metrics_table(metrics)}</div>',
        f'<div class="card"><h3>IoU histogram</h3><p>{metrics["count"]:,} expressions; dashed: the 0.5 threshold'
        f"</p>{histogram_chart(histogram['edges'], histogram['counts'], marker=0.5)}</div>",
        _taxonomy(split["taxonomy"], metrics["count"], protocol),
        *(_breakdown(item, split["split"]) for item in split["breakdowns"]),
        "</div>",
        '<p class="legend meta">Pictures: <span style="background:#3cb44b"></span>target '
        '<span style="background:#e6194b"></span>answer <span style="background:#aaa"></span>other objects</p>',
        _gallery(f"Worst misses ({len(split['gallery']['misses'])}, lowest IoU first)", split["gallery"]["misses"]),
        _gallery(
            f"Typical hits ({len(split['gallery']['hits'])}, spread over the IoU range)", split["gallery"]["hits"]
        ),
        "</section>",
    ]
    return "".join(parts)


def _training(training: dict | None) -> str:
    if not training:
        return ""
    series = training["series"]
    accuracy = {name: values for name, values in series.items() if name.startswith("val_")}
    losses = {name: values for name, values in series.items() if name.startswith("loss")}
    charts = "".join(
        f'<div class="card">{line_chart(training["epochs"], group, title)}</div>'
        for group, title in ((accuracy, "validation (%)"), (losses, "training loss"))
        if group
    )
    return (
        f'<section id="training"><h2>Training</h2><p class="meta">from {escape(training["metrics_csv"])}</p>'
        f'<div class="cards">{charts}</div></section>'
    )


def render_page(report: dict) -> str:
    """The whole page for one report dictionary."""
    splits = report["splits"]
    nav = "".join(f'<a href="#split-{escape(s["split"])}">{escape(s["split"])}</a>' for s in splits)
    if report["training"]:
        nav += '<a href="#training">training</a>'
    note_class = "meta" if report["objects"]["complete"] else "note"
    note = f'<p class="{note_class}">{escape(report["objects"]["note"])}</p>'
    protocol = report["protocol"]
    meta = (
        f"checkpoint {escape(report['checkpoint'])} · model {escape(report['model'])} · dataset "
        f"{escape(report['dataset'])} ({escape(report['annotations'])}) · evaluation protocol "
        f"{escape(protocol['name'])} (hit = {escape(protocol['hit_rule'])}) · written {escape(report['created'])}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>simrec report: {escape(report['checkpoint'])}</title><style>{STYLE}</style></head><body>"
        f'<header><h1>Where the model fails</h1><p class="meta">{meta}</p>{note}<nav>{nav}</nav></header>'
        f"<main>{''.join(_split_section(split, protocol) for split in splits)}{_training(report['training'])}</main>"
        "</body></html>\n"
    )
