//! The figures written out: a markdown table, a plot.

use super::*;

pub(super) fn markdown(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| scenario | profile | runs | median | min–max | bytes up | bytes down | floor | round trips | target | met | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in figures {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {}–{} | {} | {} | {} | {} | {} | {} | {} |\n",
            f.scenario,
            f.profile,
            f.runs,
            fmt_ms(f.median_ms),
            fmt_ms(f.min_ms),
            fmt_ms(f.max_ms),
            fmt_bytes(f.bytes_up),
            fmt_bytes(f.bytes_down),
            f.floor_bytes
                .map(|b| fmt_bytes(b as u64))
                .unwrap_or_else(|| "—".into()),
            if f.round_trips > 0 {
                f.round_trips.to_string()
            } else {
                "—".into()
            },
            f.target,
            match f.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            },
            f.note
        ));
    }
    out
}

pub(super) fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else {
        format!("{v:.2} ms")
    }
}

pub(super) fn fmt_bytes(b: u64) -> String {
    if b == 0 {
        "—".into()
    } else if b >= 10 * 1024 {
        format!("{:.1} KB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// An SVG of first-sync time and bytes down against caseload size (log scale).
pub(super) fn plot(points: &[PlotPoint], profile: &str) -> String {
    let (w, h, pad) = (640.0, 360.0, 60.0);
    let xs: Vec<f64> = points.iter().map(|p| (p.0 as f64).log10()).collect();
    let (xmin, xmax) = (
        xs.iter().cloned().fold(f64::MAX, f64::min),
        xs.iter().cloned().fold(f64::MIN, f64::max),
    );
    let tmax = points
        .iter()
        .map(|p| p.1 / 1000.0)
        .fold(0.0, f64::max)
        .max(1.0);
    let bmax = points
        .iter()
        .map(|p| p.2 as f64 / 1024.0)
        .fold(0.0, f64::max)
        .max(1.0);
    let x = |v: f64| pad + (v - xmin) / (xmax - xmin).max(1e-9) * (w - 2.0 * pad);
    let y = |v: f64, max: f64| h - pad - v / max * (h - 2.0 * pad);
    let line = |ys: Vec<f64>, max: f64| {
        xs.iter()
            .zip(ys)
            .map(|(a, b)| format!("{:.1},{:.1}", x(*a), y(b, max)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let times = line(points.iter().map(|p| p.1 / 1000.0).collect(), tmax);
    let bytes = line(points.iter().map(|p| p.2 as f64 / 1024.0).collect(), bmax);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{pad}\" y=\"24\" font-size=\"14\">First sync on the {profile} profile against caseload size</text>\n\
         <line x1=\"{pad}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"black\"/>\n\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{0}\" stroke=\"black\"/>\n\
         <polyline points=\"{times}\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n\
         <polyline points=\"{bytes}\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>\n\
         <text x=\"{pad}\" y=\"44\" fill=\"#1f77b4\">time (s), max {tmax:.1} s</text>\n\
         <text x=\"{2}\" y=\"44\" fill=\"#d62728\">bytes down (KB), max {bmax:.0} KB</text>\n",
        h - pad,
        w - pad,
        w / 2.0
    );
    for (p, xv) in points.iter().zip(&xs) {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{} cases</text>\n<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f77b4\"/>\n<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#d62728\"/>\n",
            x(*xv),
            h - pad + 18.0,
            p.0,
            x(*xv),
            y(p.1 / 1000.0, tmax),
            x(*xv),
            y(p.2 as f64 / 1024.0, bmax)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// What each first sync received, in each candidate encoding, against the information itself.
pub(super) fn encodings_table(encodings: &[Encodings]) -> String {
    let mut out = String::from(
        "| cases | changes (protocol 6) | documents (protocol 7) | documents, zstd -19 | documents, DEFLATE | state, zstd -3 | state, zstd -19 | changes/state | documents/state |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for e in encodings {
        let ratio = |bytes: usize| bytes as f64 / e.state_zstd3.max(1) as f64;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} |\n",
            e.cases,
            fmt_bytes(e.changes as u64),
            fmt_bytes(e.documents as u64),
            fmt_bytes(e.documents_zstd19 as u64),
            fmt_bytes(e.documents_deflated as u64),
            fmt_bytes(e.state_zstd3 as u64),
            fmt_bytes(e.state_zstd19 as u64),
            ratio(e.changes),
            ratio(e.documents),
        ));
    }
    out
}

pub(super) fn report(ctx: &Ctx, points: &[PlotPoint]) -> Result<(), String> {
    let mut table = markdown(&ctx.figures);
    if !ctx.encodings.is_empty() {
        table.push_str("\nEncodings of a first sync (zstd over all cases; state = the JSON of each case's current state):\n\n");
        table.push_str(&encodings_table(&ctx.encodings));
    }
    println!("{table}");
    let write = |path: &Option<PathBuf>, text: &str| -> Result<(), String> {
        if let Some(path) = path {
            std::fs::File::create(path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    };
    write(
        &ctx.cli.json,
        &serde_json::to_string_pretty(&ctx.figures).map_err(|e| e.to_string())?,
    )?;
    write(&ctx.cli.markdown, &table)?;
    if points.len() >= 2 {
        write(&ctx.cli.plot, &plot(points, ctx.profile.name))?;
    }
    Ok(())
}
