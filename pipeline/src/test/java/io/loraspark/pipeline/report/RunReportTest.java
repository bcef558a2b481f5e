package io.loraspark.pipeline.report;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RunReportTest {
  @TempDir Path tmp;

  private static final String HEADER =
      "rank,adapter_id,method,lora_rank,lr_ratio,eval_loss,status,lr,alpha,targets,steps,"
          + "train_loss,base_eval_loss,trainable_params,tokens_per_s,pruned_at_round,failure\n";

  /**
   * A 4-adapter sweep: 2 ok, 1 pruned, 1 failed with markup in its message, as SweepRunner writes.
   */
  static Path runDir(Path dir) throws Exception {
    Files.createDirectories(dir);
    Files.writeString(
        dir.resolve("leaderboard.csv"),
        HEADER
            + "1,a003-r4-x8,lora,4,8.00000,5.58142,ok,0.00100000,8.00000,\"q,k,v\",12,2.89303,"
            + "6.87481,11760,1885.82,,\n"
            + "2,a002-r4-x1,lora,4,1.00000,6.10135,ok,0.00100000,8.00000,\"q,k,v\",12,3.26654,"
            + "6.87481,11760,1726.71,,\n"
            + "3,a001-r2-x8,lora,2,8.00000,6.79780,pruned,0.00100000,4.00000,q,3,4.08378,"
            + "6.87481,5880,1140.00,1,\n"
            + "4,a000-r2-x1,dora,2,1.00000,,failed,0.00100000,4.00000,\"q,k,v\",3,,,5880,,,"
            + "\"NaN loss at step 2, see <script>alert(\"\"x\"\")</script> & log\"\n");
    StringBuilder m =
        new StringBuilder(
            "adapter_id,step,train_loss,eval_loss,lr,grad_norm,tokens,tokens_per_s\n");
    String[] ids = {"a003-r4-x8", "a002-r4-x1", "a001-r2-x8"};
    int[] steps = {12, 12, 3};
    for (int a = 0; a < ids.length; a++) {
      for (int s = 1; s <= steps[a]; s++) {
        double train = 4.5 - 0.12 * s - 0.2 * a + 0.1 * Math.sin(s);
        String eval =
            s % 3 == 0 ? String.format(Locale.ROOT, "%.6g", 6.9 - 0.11 * s + 0.3 * a) : "";
        m.append(
            String.format(
                Locale.ROOT,
                "%s,%d,%.6g,%s,%.6g,%.6g,%d,%.6g%n",
                ids[a],
                s,
                train,
                eval,
                0.001,
                2.0,
                100,
                1500.0));
      }
    }
    Files.writeString(dir.resolve("metrics.csv"), m.toString());
    Files.writeString(
        dir.resolve("run.json"),
        """
        {"run_id":"nightly-7","finished":"2026-11-22T17:31:57Z","seconds":22.2,
         "config_file":"conf/sweep.yaml","model":"models/stories260K","data":"data/train.jsonl",
         "adapters_per_task":2,"pruning":{"strategy":"successive_halving","eta":2,"minSteps":3},
         "rungs":[3,6,12],
         "rounds":[{"round":1,"rung_steps":3,"adapters":3,"tasks":2,"kept":2,"seconds":10.4},
                   {"round":2,"rung_steps":12,"adapters":2,"tasks":1,"kept":2,"seconds":2.9}],
         "spark_version":"4.1.0","spark_master":"local[2]",
         "adapters":[{"adapter_id":"a003-r4-x8","status":"ok","settings":{"note":"</pre><b>"}}]}
        """);
    return dir;
  }

  @Test
  void writesSelfContainedHtmlWithTheLeaderboardInOrderAndEscaped() throws Exception {
    Path run = runDir(tmp.resolve("run"));
    Path html = RunReport.write(run);
    assertThat(html).isEqualTo(run.resolve("report.html"));
    String page = Files.readString(html);

    assertThat(page).contains("nightly-7", "local[2]");
    List<Integer> at = new ArrayList<>();
    for (String id : List.of("a003-r4-x8", "a002-r4-x1", "a001-r2-x8", "a000-r2-x1")) {
      at.add(page.indexOf("<td>" + id + "</td>"));
    }
    assertThat(at).as("leaderboard rows in file order").doesNotContain(-1).isSorted();
    assertThat(page)
        .contains(
            "NaN loss at step 2, see &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; log")
        .doesNotContain("<script")
        .contains("&lt;/pre&gt;&lt;b&gt;") // run.json inside <pre> is escaped too
        .contains("<td>q,k,v</td>")
        .contains("Best adapter a003-r4-x8: eval loss 5.5814");
    assertThat(page).doesNotContainPattern("(?i)(src|href)\\s*=\\s*\"?(https?:)?//");
    assertThat(page).doesNotContain("http://", "https://", "<link", "@import", "url(");

    // loss curves (3 adapters → one chart), eval vs rank, eval vs lr_ratio
    Matcher img = Pattern.compile("src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"").matcher(page);
    int images = 0;
    while (img.find()) {
      BufferedImage decoded =
          ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(img.group(1))));
      assertThat(decoded).as("image %d decodes as PNG", images).isNotNull();
      assertThat(decoded.getWidth()).isGreaterThan(400);
      images++;
    }
    assertThat(images).isEqualTo(3);
    assertThat(page).contains("Pruning rounds", "successive_halving", "<td class=\"num\">12</td>");
  }

  @Test
  void writesMarkdownWithTheTableAndLinkedImagesThatExist() throws Exception {
    Path run = runDir(tmp.resolve("run"));
    RunReport.write(run);
    String md = Files.readString(run.resolve("report.md"));
    assertThat(md).contains("| 1 | a003-r4-x8 | lora | 4 | 8 | 5.5814 |");
    assertThat(md.indexOf("a002-r4-x1 |")).isLessThan(md.indexOf("a001-r2-x8 |"));
    assertThat(md).contains("&lt;script&gt;").doesNotContain("<script");
    Matcher link = Pattern.compile("!\\[[^]]*]\\(([^)]+)\\)").matcher(md);
    int links = 0;
    while (link.find()) {
      Path png = run.resolve(link.group(1));
      assertThat(png).as("linked image %s", link.group(1)).isRegularFile();
      assertThat(ImageIO.read(png.toFile())).isNotNull();
      links++;
    }
    assertThat(links).isEqualTo(3);
    assertThat(md).contains("```json", "\"strategy\" : \"successive_halving\"");
    try (var files = Files.list(run)) {
      assertThat(files.map(p -> p.getFileName().toString()))
          .as("no temp files left")
          .noneMatch(n -> n.endsWith(".tmp"));
    }
  }

  @Test
  void drawsSmallMultiplesAboveEightCurvesAndRemovesStaleImages() throws Exception {
    Path run = runDir(tmp.resolve("run"));
    RunReport.write(run);
    StringBuilder m = new StringBuilder(Files.readString(run.resolve("metrics.csv")));
    for (int r = 0; r < 7; r++) {
      for (int s = 1; s <= 3; s++) {
        m.append("a001-r2-x8-rep").append(r).append(',').append(s).append(",4.1,,0.001,1,9,1\n");
      }
    }
    Files.writeString(run.resolve("metrics.csv"), m.toString());
    RunReport.write(run);
    try (var files = Files.list(run.resolve("report"))) {
      assertThat(files.map(p -> p.getFileName().toString()))
          .containsExactlyInAnyOrder(
              "loss-01.png",
              "loss-02.png",
              "loss-03.png",
              "eval-vs-rank.png",
              "eval-vs-lr-ratio.png");
    }
  }

  @Test
  void missingOrMalformedFilesAreIllegalArgumentsNamingTheFile() throws Exception {
    Path run = runDir(tmp.resolve("run"));
    Files.delete(run.resolve("leaderboard.csv"));
    assertThatThrownBy(() -> RunReport.write(run))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("leaderboard.csv");

    Path other = runDir(tmp.resolve("other"));
    Files.writeString(
        other.resolve("leaderboard.csv"), HEADER + "1,a,lora,four,1,2,ok,,,,,,,,,,\n");
    assertThatThrownBy(() -> RunReport.write(other))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("leaderboard.csv: row 2: lora_rank must be a number but was 'four'");

    Files.writeString(other.resolve("run.json"), "{not json");
    assertThatThrownBy(() -> RunReport.write(other))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("run.json");

    assertThatThrownBy(() -> RunReport.write(tmp.resolve("absent")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("absent")
        .hasMessageContaining("does not exist");
  }

  @Test
  void csvFollowsRfc4180() {
    CsvTable t =
        CsvTable.parse(
            "t.csv", "a,b,c\r\n1,\"x,y\",\r\n\"he said \"\"hi\"\"\",\"two\nlines\",\"\"\n3,,z");
    assertThat(t.header()).containsExactly("a", "b", "c");
    assertThat(t.rows().get(0)).containsExactly("1", "x,y", null);
    assertThat(t.rows().get(1)).containsExactly("he said \"hi\"", "two\nlines", "");
    assertThat(t.rows().get(2)).containsExactly("3", null, "z");
    assertThatThrownBy(() -> CsvTable.parse("t.csv", "a,b\n\"open,1\n"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("t.csv: unterminated");
    assertThatThrownBy(() -> CsvTable.parse("t.csv", "a,b\n1,2,3\n"))
        .hasMessageContaining("record 2 has 3 fields but the header has 2");
    assertThatThrownBy(() -> CsvTable.parse("t.csv", "a\n\"x\"y\n"))
        .hasMessageContaining("line 2: text after a closing quote");
  }

  /**
   * A staged run's leaderboard (two roots, a child with a grandchild, a child whose parent is not
   * in the run): both reports nest each node under its parent with its eval loss and its gain, the
   * gains computed here by hand from the rows (base_eval_loss − eval_loss).
   */
  @Test
  void aStagedRunsReportDrawsItsTreeWithEachNodesGain() throws Exception {
    Path dir = runDir(tmp.resolve("tree"));
    String header = HEADER.strip() + ",perplexity,pruned_at_step,wall_seconds,parent,depth\n";
    Files.writeString(
        dir.resolve("leaderboard.csv"),
        header
            + "1,c-a000,lora,2,1.0,2.50000,ok,0.001,4.0,q,4,2.6,2.75000,10,1.0,,,,,1.0,b-a001,2\n"
            + "2,b-a001,lora,2,1.0,3.00000,ok,0.001,4.0,q,4,3.1,3.50000,10,1.0,,,,,1.0,a-a000,1\n"
            + "3,b-a000,lora,2,1.0,3.60000,ok,0.001,4.0,q,4,3.7,3.40000,10,1.0,,,,,1.0,/x/p,1\n"
            + "4,a-a000,lora,2,1.0,4.00000,ok,0.001,4.0,q,4,4.1,5.00000,10,1.0,,,,,1.0,,0\n"
            + "5,a-a001,lora,2,1.0,4.20000,pruned,0.001,4.0,q,2,4.3,5.00000,10,1.0,1,,,2,1.0,,0\n");
    RunReport.write(dir);
    String md = Files.readString(dir.resolve(RunReport.MARKDOWN));
    assertThat(md)
        .contains(
            "## Adapter tree",
            "- a-a000 · eval loss 4.0000 · gain +1.0000 over base · ok\n"
                + "  - b-a001 · eval loss 3.0000 · gain +0.5000 over parent · ok\n"
                + "    - c-a000 · eval loss 2.5000 · gain +0.2500 over parent · ok\n",
            "- a-a001 · eval loss 4.2000 · gain +0.8000 over base · pruned\n",
            "- b-a000 · eval loss 3.6000 · gain -0.2000 over parent · ok\n");
    String html = Files.readString(dir.resolve(RunReport.HTML));
    int tree = html.indexOf("<section id=\"tree\">");
    assertThat(tree).isPositive();
    String section = html.substring(tree, html.indexOf("</section>", tree));
    assertThat(section)
        .contains("<b>c-a000</b> · eval loss 2.5000 · <span class=\"gain\">gain +0.2500</span>")
        .contains("<b>b-a000</b> · eval loss 3.6000 · <span class=\"loss\">gain -0.2000</span>");
    // nesting: c-a000's list item sits inside b-a001's, which sits inside a-a000's
    assertThat(section.indexOf("<b>a-a000</b>"))
        .isLessThan(section.indexOf("<b>b-a001</b>"))
        .isLessThan(section.indexOf("<b>c-a000</b>"));
    assertThat(
            section.substring(section.indexOf("<b>b-a001</b>"), section.indexOf("<b>c-a000</b>")))
        .contains("<ul>");
    // a plain sweep has no tree section and no parent/depth columns
    String plain = Files.readString(RunReport.write(runDir(tmp.resolve("plain"))));
    assertThat(plain).doesNotContain("id=\"tree\"", ">depth<");
  }
}
