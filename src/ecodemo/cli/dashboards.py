"""``ecodemo dashboards``: build the Grafana JSON, publish it to a running Grafana."""

from __future__ import annotations

from pathlib import Path

import typer

from ecodemo.cli.common import console, settings

app = typer.Typer(help="Grafana dashboards: build the JSON, publish over the HTTP API.",
                  no_args_is_help=True)


def _lang(value: str | None) -> str | None:
    if value is not None and value not in ("fr", "en"):
        raise typer.BadParameter("expected fr or en")
    return value


@app.command("build")
def build(
    out: Path = typer.Option(Path("dashboards"), "--out",
                             help="Folder for the dashboard JSON files."),
    lang: str = typer.Option("fr", "--lang", callback=_lang,
                             help="Language of titles and labels: fr (default) or en."),
) -> None:
    """Write the territory, models and frugality dashboards as JSON (stable uids)."""
    from ecodemo.dashboards import stages

    result = stages.build(out, lang)  # type: ignore[arg-type]
    for name in result["files"]:
        console.print(f"wrote {out / name}")


@app.command("publish")
def publish(
    out: Path | None = typer.Option(None, "--out",
                                    help="Also write the JSON files into this folder."),
    lang: str | None = typer.Option(None, "--lang", callback=_lang,
                                    help="Language of titles and labels: fr or en "
                                    "(default: ECODEMO_DASHBOARDS_LANG, else fr)."),
) -> None:
    """Publish the dashboards where the settings say.

    With ECODEMO_GRAFANA_DASHBOARDS_DIR: write the JSON into the folder Grafana provisions from
    (what docker compose does; no Grafana credential needed). With ECODEMO_GRAFANA_URL (token
    or user/password from the environment): upload over Grafana's HTTP API, folder and
    datasource created if missing, dashboards overwritten by uid, training runs and promotions
    added as annotations."""
    from ecodemo.dashboards import stages

    r = stages.publish(settings(), out, lang)  # type: ignore[arg-type]
    if r["mode"] == "provisioning":
        console.print(f"provisioned {len(r['dashboards'])} dashboard(s) in {r['out_dir']} "
                      f"({len(r['written'])} written, {len(r['unchanged'])} unchanged); "
                      "Grafana reloads them at its next scan", markup=False)
        return
    console.print(
        f"published {len(r['dashboards'])} dashboard(s) to {r['url']} "
        f"(folder {'created' if r['folder_created'] else 'kept'}, datasource "
        f"{'created' if r['datasource_created'] else 'kept'}, annotations "
        f"+{r['annotations_added']} / {r['annotations_skipped']} already there)")
    if r["annotations_error"]:
        console.print(f"annotations skipped: {r['annotations_error']}")
