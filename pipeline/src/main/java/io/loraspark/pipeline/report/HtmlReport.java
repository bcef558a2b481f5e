package io.loraspark.pipeline.report;

import io.loraspark.train.loop.AdapterStatus;
import java.util.Base64;
import java.util.List;

/**
 * Renders the report as one self-contained HTML page: inline CSS, charts as base64 PNG data URIs,
 * no scripts and no external resources, so it opens offline and can be mailed as one file. Every
 * value from the run directory is HTML-escaped.
 */
final class HtmlReport {
  private static final String CSS =
      """
      :root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --soft:#f9fafb; --accent:#2563eb; }
      * { box-sizing:border-box; }
      body { margin:0; background:#f3f4f6; color:var(--ink);
        font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
      main { max-width:1280px; margin:0 auto; padding:40px 28px 64px; }
      header { margin-bottom:28px; }
      h1 { font-size:28px; line-height:1.2; margin:0 0 6px; letter-spacing:-0.01em; }
      h2 { font-size:19px; margin:0 0 4px; }
      .meta { color:var(--muted); font-size:14px; }
      .meta code { font-size:13px; }
      section { background:#fff; border:1px solid var(--line); border-radius:12px;
        padding:22px 24px; margin:0 0 22px; }
      .lead { font-size:16px; margin:14px 0 0; }
      .note { color:var(--muted); font-size:13.5px; margin:4px 0 14px; }
      .cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(130px,1fr)); gap:12px;
        margin-top:16px; }
      .card { background:var(--soft); border:1px solid var(--line); border-radius:10px;
        padding:12px 14px; }
      .card b { display:block; font-size:24px; font-variant-numeric:tabular-nums; }
      .card span { color:var(--muted); font-size:13px; }
      .scroll { overflow-x:auto; }
      table { border-collapse:collapse; width:100%; font-size:13.5px; }
      th, td { padding:6px 7px; border-bottom:1px solid var(--line); text-align:left;
        vertical-align:top; white-space:nowrap; }
      th { font-weight:600; color:var(--muted); background:var(--soft); font-size:12.5px;
        text-transform:uppercase; letter-spacing:0.03em; }
      td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
      td.failure { white-space:normal; min-width:220px; color:#991b1b; }
      tbody tr:nth-child(even) { background:#fcfcfd; }
      tr.best td { background:#eff6ff; font-weight:600; }
      .pill { display:inline-block; padding:1px 9px; border-radius:999px; font-size:12px;
        font-weight:600; }
      .pill.ok { background:#dcfce7; color:#166534; }
      .pill.pruned { background:#fef3c7; color:#92400e; }
      .pill.failed { background:#fee2e2; color:#991b1b; }
      figure { margin:0; }
      figure img { display:block; max-width:100%; height:auto; }
      figcaption { color:var(--muted); font-size:13px; margin-top:6px; }
      .grid { display:flex; flex-wrap:wrap; gap:18px; }
      .grid figure { flex:1 1 300px; }
      .grid figure h3 { font-size:14px; margin:0 0 6px; }
      pre { background:#0f172a; color:#e2e8f0; border-radius:10px; padding:16px 18px;
        overflow:auto; font:12.5px/1.5 ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;
        max-height:560px; }
      details summary { cursor:pointer; color:var(--accent); margin-bottom:10px; }
      footer { color:var(--muted); font-size:12.5px; text-align:center; }
      ul.tree, ul.tree ul { list-style:none; margin:0; padding-left:22px; }
      ul.tree { padding-left:0; }
      ul.tree li { position:relative; padding:3px 0 3px 16px; border-left:1px solid var(--line); }
      ul.tree li::before { content:""; position:absolute; left:0; top:14px; width:12px;
        border-top:1px solid var(--line); }
      ul.tree .node { font-variant-numeric:tabular-nums; }
      ul.tree .gain { color:#166534; } ul.tree .loss { color:#991b1b; }
      """;

  private HtmlReport() {}

  static String render(RunData run, Summary s, List<Charts.Figure> figures) {
    StringBuilder b = new StringBuilder(64 * 1024);
    b.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        .append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        .append("<title>Sweep report · ")
        .append(esc(run.runId()))
        .append("</title>\n<style>")
        .append(CSS)
        .append("</style>\n</head>\n<body>\n<main>\n");
    header(b, run);
    summary(b, s);
    b.append("<section id=\"leaderboard\">\n<h2>Leaderboard</h2>\n")
        .append("<p class=\"note\">Best first: finished adapters by eval loss, then pruned, then")
        .append(" failed. Perplexity is exp(eval loss).</p>\n");
    table(b, Tables.leaderboard(run), "best");
    b.append("</section>\n");
    tree(b, run);
    charts(b, figures);
    rounds(b, run);
    b.append("<section id=\"config\">\n<h2>Resolved configuration</h2>\n")
        .append("<p class=\"note\">run.json as written by the sweep.</p>\n")
        .append("<details open><summary>run.json</summary>\n<pre>")
        .append(esc(run.prettyRunJson()))
        .append("</pre>\n</details>\n</section>\n")
        .append("<footer>Generated by lora-spark · charts by XChart</footer>\n")
        .append("</main>\n</body>\n</html>\n");
    return b.toString();
  }

  /** The adapter tree of a staged sweep as nested lists (nothing for a plain sweep). */
  private static void tree(StringBuilder b, RunData run) {
    List<AdapterTree.Node> roots = AdapterTree.roots(run);
    if (roots.isEmpty()) {
      return;
    }
    b.append("<section id=\"tree\">\n<h2>Adapter tree</h2>\n<p class=\"note\">")
        .append(esc(AdapterTree.NOTE))
        .append("</p>\n<ul class=\"tree\">\n");
    roots.forEach(n -> node(b, n));
    b.append("</ul>\n</section>\n");
  }

  private static void node(StringBuilder b, AdapterTree.Node n) {
    double gain = n.gain();
    String pill = n.row().status().fileName();
    b.append("<li><span class=\"node\"><b>")
        .append(esc(n.row().id()))
        .append("</b> · eval loss ")
        .append(esc(Tables.fixed(n.evalLoss(), 4)));
    if (Double.isFinite(gain)) {
      b.append(" · <span class=\"")
          .append(gain >= 0 ? "gain" : "loss")
          .append("\">gain ")
          .append(esc(String.format(java.util.Locale.ROOT, "%+.4f", gain)))
          .append("</span> over ")
          .append(n.row().text("parent") == null ? "the base" : "its parent");
    }
    b.append(" <span class=\"pill ").append(pill).append("\">").append(pill).append("</span>");
    b.append("</span>");
    if (!n.children().isEmpty()) {
      b.append("\n<ul>\n");
      n.children().forEach(c -> node(b, c));
      b.append("</ul>");
    }
    b.append("</li>\n");
  }

  private static void header(StringBuilder b, RunData run) {
    b.append("<header>\n<h1>Sweep report · ").append(esc(run.runId())).append("</h1>\n");
    b.append("<div class=\"meta\">");
    String sep = "";
    for (String[] kv : Summary.meta(run.run())) {
      b.append(sep).append(esc(kv[0])).append(" <code>").append(esc(kv[1])).append("</code>");
      sep = " · ";
    }
    b.append("</div>\n</header>\n");
  }

  private static void summary(StringBuilder b, Summary s) {
    b.append("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"cards\">\n");
    card(b, String.valueOf(s.adapters()), "adapters");
    card(b, String.valueOf(s.ok()), "finished (ok)");
    card(b, String.valueOf(s.pruned()), AdapterStatus.PRUNED.fileName());
    card(b, String.valueOf(s.failed()), AdapterStatus.FAILED.fileName());
    if (s.best().isPresent()) {
      card(b, Tables.fixed(s.bestEvalLoss(), 4), "best eval loss");
      card(b, Tables.fixed(Math.exp(s.bestEvalLoss()), 2), "best perplexity");
    }
    if (Double.isFinite(s.baseEvalLoss())) {
      card(b, Tables.fixed(s.baseEvalLoss(), 4), "base model eval loss");
    }
    b.append("</div>\n<p class=\"lead\">").append(esc(s.headline())).append("</p>\n</section>\n");
  }

  private static void card(StringBuilder b, String value, String label) {
    b.append("<div class=\"card\"><b>")
        .append(esc(value))
        .append("</b><span>")
        .append(esc(label))
        .append("</span></div>\n");
  }

  private static void charts(StringBuilder b, List<Charts.Figure> figures) {
    List<Charts.Figure> loss = figures.stream().filter(f -> f.name().startsWith("loss")).toList();
    List<Charts.Figure> scatters =
        figures.stream().filter(f -> f.name().startsWith("eval-vs")).toList();
    b.append("<section id=\"loss-curves\">\n<h2>Loss curves</h2>\n");
    if (loss.isEmpty()) {
      b.append("<p class=\"note\">No metrics were recorded.</p>\n");
    } else {
      b.append("<p class=\"note\">").append(esc(loss.get(0).caption())).append("</p>\n");
      b.append(loss.size() > 1 ? "<div class=\"grid\">\n" : "");
      loss.forEach(f -> figure(b, f, loss.size() > 1, false));
      b.append(loss.size() > 1 ? "</div>\n" : "");
    }
    b.append("</section>\n<section id=\"eval-vs-settings\">\n")
        .append("<h2>Eval loss vs LoRA rank and lr_ratio</h2>\n");
    if (scatters.isEmpty()) {
      b.append("<p class=\"note\">No finished or pruned adapter has an eval loss.</p>\n");
    } else {
      b.append("<p class=\"note\">").append(esc(scatters.get(0).caption())).append("</p>\n");
      b.append("<div class=\"grid\">\n");
      scatters.forEach(f -> figure(b, f, true, false));
      b.append("</div>\n");
    }
    b.append("</section>\n");
  }

  private static void figure(StringBuilder b, Charts.Figure f, boolean titled, boolean caption) {
    b.append("<figure>");
    if (titled) {
      b.append("<h3>").append(esc(f.title())).append("</h3>");
    }
    b.append("<img alt=\"")
        .append(esc(f.title()))
        .append("\" width=\"")
        .append(f.width())
        .append("\" height=\"")
        .append(f.height())
        .append("\" src=\"data:image/png;base64,")
        .append(Base64.getEncoder().encodeToString(f.png()))
        .append("\">");
    if (caption) {
      b.append("<figcaption>").append(esc(f.caption())).append("</figcaption>");
    }
    b.append("</figure>\n");
  }

  private static void rounds(StringBuilder b, RunData run) {
    var p = run.run().path("pruning");
    b.append("<section id=\"pruning\">\n<h2>Pruning rounds</h2>\n<p class=\"note\">");
    if (p.isObject()) {
      b.append("Strategy <code>")
          .append(esc(p.path("strategy").asText("?")))
          .append("</code>, eta ")
          .append(esc(p.path("eta").asText("?")))
          .append(", min steps ")
          .append(esc(p.path("minSteps").asText("?")))
          .append(", rungs ")
          .append(esc(run.run().path("rungs").toString()))
          .append(". ");
    }
    b.append("Each round trains the survivors to its rung and keeps the best by eval loss.</p>\n");
    Tables.Table t = Tables.rounds(run.run());
    if (t.rows().isEmpty()) {
      b.append("<p class=\"note\">run.json records no rounds.</p>\n");
    } else {
      table(b, t, null);
    }
    b.append("</section>\n");
  }

  private static void table(StringBuilder b, Tables.Table t, String firstRowClass) {
    b.append("<div class=\"scroll\"><table>\n<thead><tr>");
    for (int c = 0; c < t.headers().size(); c++) {
      b.append(t.numeric().get(c) ? "<th class=\"num\">" : "<th>")
          .append(esc(t.headers().get(c)))
          .append("</th>");
    }
    b.append("</tr></thead>\n<tbody>\n");
    int status = t.key().indexOf("status");
    for (int r = 0; r < t.rows().size(); r++) {
      List<String> row = t.rows().get(r);
      boolean best =
          r == 0
              && firstRowClass != null
              && status >= 0
              && AdapterStatus.parse(row.get(status)) == AdapterStatus.OK;
      b.append(best ? "<tr class=\"best\">" : "<tr>");
      for (int c = 0; c < row.size(); c++) {
        String key = t.key().get(c);
        String cls = t.numeric().get(c) ? "num" : key.equals("failure") ? "failure" : "";
        b.append(cls.isEmpty() ? "<td>" : "<td class=\"" + cls + "\">");
        if (c == status && !row.get(c).isEmpty()) {
          String pill = AdapterStatus.parse(row.get(c)).fileName();
          b.append("<span class=\"pill ").append(pill).append("\">");
          b.append(esc(row.get(c))).append("</span>");
        } else {
          b.append(esc(row.get(c)));
        }
        b.append("</td>");
      }
      b.append("</tr>\n");
    }
    b.append("</tbody>\n</table></div>\n");
  }

  /** Escapes text for HTML element content and double-quoted attribute values. */
  static String esc(String s) {
    StringBuilder b = new StringBuilder(s.length() + 16);
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '&' -> b.append("&amp;");
        case '<' -> b.append("&lt;");
        case '>' -> b.append("&gt;");
        case '"' -> b.append("&quot;");
        case '\'' -> b.append("&#39;");
        default -> b.append(c);
      }
    }
    return b.toString();
  }
}
