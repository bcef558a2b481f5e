package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The two ways a person looks at a finished run, on one small real run ({@code run} with
 * preprocessing; 2 ranks × 2 lr_ratios; successive halving at steps 4 and 8, so 2 adapters finish
 * and 2 are pruned): {@code notebooks/compare_adapters.ipynb} executed headless by Debian's {@code
 * jupyter-nbconvert}, and {@code report.html} rendered by Debian's headless Chromium. The executed
 * notebook, the report and a screenshot of it are kept in {@code target/artifacts/} for a person to
 * look at.
 *
 * <p>The viewers are system packages, not Maven artifacts: where one is missing its test is skipped
 * with the {@code apt-get install} line that adds it ({@code .ci/run} installs them, so CI runs
 * both).
 */
class RunViewersIT {
  static final Path ROOT = CliScoreTest.ROOT;
  static final Path NOTEBOOK = ROOT.resolve("notebooks/compare_adapters.ipynb");
  static final Path ARTIFACTS = Path.of("target", "artifacts").toAbsolutePath();
  static final Path NBCONVERT = Path.of("/usr/bin/jupyter-nbconvert");

  /** The notebook's kernel: Debian's Python, where python3-pandas and friends install. */
  static final Path PYTHON = Path.of("/usr/bin/python3");

  /** Python module the notebook's kernel needs → the Debian package that provides it. */
  static final Map<String, String> KERNEL_MODULES =
      Map.of(
          "ipykernel", "python3-ipykernel",
          "pandas", "python3-pandas",
          "matplotlib", "python3-matplotlib");

  static final String CONFIG =
      """
      run_id: viewers
      model: '%s'
      master: 'local[2]'
      preprocess:
        input: '%s'
        format: alpaca
        max_seq_len: 256
        on_too_long: truncate
        eval_fraction: 0.15
        shards: 2
      adapters_per_task: 2
      checkpoint_every: 0
      defaults:
        lr: 2.0e-3
        steps: 8
        batch_size: 4
        targets: [q, v, o, down]
        seed: 42
      grid:
        rank: [2, 4]
        lr_ratio: [1, 8]
      pruning:
        strategy: successive_halving
        eta: 2
        min_steps: 4
      """;

  static final int ADAPTERS = 4;

  /**
   * What the report page shows, measured in the browser: the leaderboard's cells, every chart's
   * decoded and displayed size, and every reference to something outside the page.
   */
  static final String MEASURE =
      """
      JSON.stringify({
        rows: [...document.querySelectorAll('#leaderboard table tbody tr')]
            .map(tr => [...tr.cells].map(td => td.textContent.trim())),
        images: [...document.images].map(i => ({
            alt: i.alt, src: i.getAttribute('src').slice(0, 22), complete: i.complete,
            naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight,
            width: i.getBoundingClientRect().width, height: i.getBoundingClientRect().height})),
        svgs: [...document.querySelectorAll('svg')].map(s => ({
            width: s.getBoundingClientRect().width, height: s.getBoundingClientRect().height})),
        external: [...document.querySelectorAll('[src],[href]')]
            .map(e => e.getAttribute('src') || e.getAttribute('href'))
            .filter(u => !u.startsWith('data:') && !u.startsWith('#')),
        fetched: performance.getEntriesByType('resource').map(e => e.name),
        pageWidth: document.documentElement.scrollWidth,
        viewportWidth: window.innerWidth
      })
      """;

  @TempDir static Path tmp;

  private static Path run;

  /** The run both viewers look at, made once, by the first test that needs it. */
  static synchronized Path run() throws IOException {
    if (run == null) {
      Path config = tmp.resolve("viewers.yaml");
      Files.writeString(
          config,
          CONFIG.formatted(
              ROOT.resolve("models/stories260K"),
              ROOT.resolve("data/self-instruct/alpaca-format-self-instruct-seed.jsonl")));
      Path out = tmp.resolve("run");
      CliRunner r = CliRunner.run("run", "--config", config.toString(), "--output", out.toString());
      assertThat(r.exitCode()).as("run exit code; stderr:%n%s", r.err()).isZero();
      run = out;
    }
    return run;
  }

  @Test
  void committedNotebookHasNoOutputs() throws IOException {
    JsonNode nb = new ObjectMapper().readTree(NOTEBOOK.toFile());
    assertThat(nb.get("cells")).as("cells of %s", NOTEBOOK).isNotEmpty();
    for (JsonNode cell : nb.get("cells")) {
      if (cell.get("cell_type").asText().equals("code")) {
        assertThat(cell.get("outputs"))
            .as("outputs of a code cell: clear them before committing %s", NOTEBOOK)
            .isEmpty();
        assertThat(cell.get("execution_count").isNull()).as("execution_count is null").isTrue();
      }
    }
  }

  @Test
  void notebookRunsTopToBottomOnARealRun() throws Exception {
    assumeInstalled(
        Files.isExecutable(NBCONVERT),
        NBCONVERT + " is missing: apt-get install jupyter-nbconvert (notebook check skipped)");
    List<String> missing = missingKernelPackages();
    assumeInstalled(
        missing.isEmpty(),
        "Debian's "
            + PYTHON
            + " lacks the notebook's modules: apt-get install "
            + String.join(" ", missing)
            + " (notebook check skipped)");
    Path runDir = run().toRealPath();
    Path executed = executeNotebook(runDir);

    JsonNode nb = new ObjectMapper().readTree(executed.toFile());
    List<String> errors = new ArrayList<>();
    List<String> text = new ArrayList<>();
    int images = 0;
    for (JsonNode cell : nb.get("cells")) {
      for (JsonNode out : cell.path("outputs")) {
        if (out.get("output_type").asText().equals("error")) {
          errors.add(
              out.get("ename").asText()
                  + ": "
                  + out.get("evalue").asText()
                  + "\n"
                  + String.join("\n", textOf(out.get("traceback")))
                      .replaceAll("\u001B\\[[;\\d]*m", ""));
        }
        images += out.path("data").has("image/png") ? 1 : 0;
        text.add(String.join("", textOf(out.path("text"))));
        text.add(String.join("", textOf(out.path("data").path("text/plain"))));
      }
    }
    assertThat(errors).as("cell errors in %s", executed).isEmpty();
    assertThat(images).as("charts: loss curves, eval loss vs settings, pruning").isEqualTo(3);
    String all = String.join("\n", text);
    assertThat(all)
        .as("the kernel is Debian's Python and read this run")
        .contains("at " + PYTHON, "run directory: " + runDir, "best/ holds a0");
  }

  @Test
  void reportRendersOfflineInHeadlessChromium() throws Exception {
    assumeInstalled(
        Files.isExecutable(HeadlessChromium.BINARY),
        HeadlessChromium.BINARY + " is missing: apt-get install chromium (report check skipped)");
    Path runDir = run();
    Path html = runDir.resolve("report.html");
    List<String> board = Files.readAllLines(runDir.resolve("leaderboard.csv"));
    assertThat(board).as("leaderboard.csv: a header and one row per adapter").hasSize(ADAPTERS + 1);
    Files.createDirectories(ARTIFACTS);
    Files.copy(html, ARTIFACTS.resolve("report.html"), StandardCopyOption.REPLACE_EXISTING);

    JsonNode page;
    List<String> requested;
    try (HeadlessChromium browser =
        HeadlessChromium.start(Files.createDirectories(tmp.resolve("chromium")), 1280, 900)) {
      browser.navigate(html.toUri());
      page = new ObjectMapper().readTree(browser.evaluate(MEASURE).asText());
      Files.write(ARTIFACTS.resolve("report.png"), browser.screenshot());
      requested = browser.requestedUrls();
    }

    assertThat(page.get("rows")).as("leaderboard rows: one per adapter").hasSize(ADAPTERS);
    for (int i = 0; i < ADAPTERS; i++) {
      String id = board.get(i + 1).split(",")[1];
      assertThat(textOf(page.get("rows").get(i)))
          .as("leaderboard row %d is leaderboard.csv's", i + 1)
          .contains(id);
    }
    assertThat(page.get("images"))
        .as("charts: loss curves, eval loss vs rank, vs lr_ratio")
        .hasSize(3);
    for (JsonNode img : page.get("images")) {
      String which = img.get("alt").asText();
      assertThat(img.get("src").asText()).as("%s is inline", which).startsWith("data:image/");
      assertThat(img.get("complete").asBoolean()).as("%s loaded", which).isTrue();
      assertThat(img.get("naturalWidth").asInt()).as("%s decoded width", which).isPositive();
      assertThat(img.get("naturalHeight").asInt()).as("%s decoded height", which).isPositive();
      double w = img.get("width").asDouble();
      double h = img.get("height").asDouble();
      assertThat(w).as("%s displayed width", which).isPositive();
      assertThat(h).as("%s displayed height", which).isPositive();
      double natural = img.get("naturalWidth").asDouble() / img.get("naturalHeight").asDouble();
      assertThat(w / h).as("%s keeps its aspect ratio", which).isCloseTo(natural, within(0.02));
    }
    for (JsonNode svg : page.get("svgs")) {
      assertThat(svg.get("width").asDouble() * svg.get("height").asDouble())
          .as("inline svg has an area")
          .isPositive();
    }
    assertThat(page.get("external")).as("references outside the page").isEmpty();
    assertThat(page.get("fetched")).as("resources fetched by the page").isEmpty();
    assertThat(requested)
        .as("requests the browser made")
        .isNotEmpty()
        .allMatch(u -> u.startsWith("file:") || u.startsWith("data:"));
    assertThat(page.get("pageWidth").asInt())
        .as("the page does not scroll sideways at 1280 px (wide tables scroll inside)")
        .isLessThanOrEqualTo(page.get("viewportWidth").asInt());
  }

  /**
   * Executes the notebook on a run with Debian's nbconvert and kernel; cells that fail leave their
   * error in the executed notebook (so it is kept as an artifact either way).
   *
   * @return the executed notebook in {@link #ARTIFACTS}
   */
  static Path executeNotebook(Path runDir) throws IOException, InterruptedException {
    // a kernelspec of our own pins the kernel to Debian's Python, whatever python3 is on PATH
    Path jupyter = tmp.resolve("jupyter");
    Path spec = Files.createDirectories(jupyter.resolve("kernels/lora-spark-debian-python3"));
    Files.writeString(
        spec.resolve("kernel.json"),
        """
        {"argv": ["%s", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
         "display_name": "Debian Python 3", "language": "python"}
        """
            .formatted(PYTHON));
    Files.createDirectories(ARTIFACTS);
    Path executed = ARTIFACTS.resolve("compare_adapters.executed.ipynb");
    Files.deleteIfExists(executed);
    ProcessBuilder pb =
        new ProcessBuilder(
                NBCONVERT.toString(),
                "--to",
                "notebook",
                "--execute",
                "--allow-errors",
                "--ExecutePreprocessor.kernel_name=lora-spark-debian-python3",
                "--ExecutePreprocessor.timeout=300",
                "--output-dir",
                ARTIFACTS.toString(),
                "--output",
                "compare_adapters.executed",
                NOTEBOOK.toString())
            .redirectErrorStream(true)
            .redirectOutput(tmp.resolve("nbconvert.log").toFile());
    isolatedJupyterEnvironment(pb.environment(), jupyter);
    pb.environment().put("LORA_RUN_DIR", runDir.toString());
    Process p = pb.start();
    boolean done = p.waitFor(5, TimeUnit.MINUTES);
    if (!done) {
      p.destroyForcibly();
    }
    String log = Files.readString(tmp.resolve("nbconvert.log"));
    assertThat(done).as("nbconvert finished within 5 minutes; log:%n%s", log).isTrue();
    assertThat(p.exitValue()).as("nbconvert exit code; log:%n%s", log).isZero();
    return executed;
  }

  /**
   * Skips the calling test when a system package is missing, saying so on stderr too: the build's
   * console shows only the count of skipped tests, and the message is the fix.
   */
  static void assumeInstalled(boolean installed, String message) {
    if (!installed) {
      System.err.println("SKIPPED " + RunViewersIT.class.getSimpleName() + ": " + message);
    }
    assumeTrue(installed, message);
  }

  /** Debian packages missing for the kernel's modules, found by asking Debian's Python. */
  static List<String> missingKernelPackages() throws IOException, InterruptedException {
    if (!Files.isExecutable(PYTHON)) {
      return List.of("python3");
    }
    List<String> cmd = new ArrayList<>(List.of(PYTHON.toString(), "-c", FIND_MODULES));
    cmd.addAll(KERNEL_MODULES.keySet());
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    isolatedJupyterEnvironment(pb.environment(), tmp.resolve("jupyter"));
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(1, TimeUnit.MINUTES)).as("%s answered", PYTHON).isTrue();
    assertThat(p.exitValue()).as("%s: %s", PYTHON, out).isZero();
    return out.lines().filter(l -> !l.isBlank()).map(KERNEL_MODULES::get).sorted().toList();
  }

  private static final String FIND_MODULES =
      "import importlib.util, sys\n"
          + "for m in sys.argv[1:]:\n"
          + "    if importlib.util.find_spec(m) is None: print(m)\n";

  /**
   * Debian's tools first on PATH and nothing from another Python (pyenv, a virtualenv) leaking into
   * Debian's; Jupyter, IPython and matplotlib state in the test's own directories, so neither the
   * user's configuration nor their kernels take part.
   */
  static void isolatedJupyterEnvironment(Map<String, String> env, Path jupyter) {
    for (String v : List.of("PYTHONPATH", "PYTHONHOME", "PYENV_VERSION", "VIRTUAL_ENV")) {
      env.remove(v);
    }
    env.put("PATH", "/usr/bin:/bin:" + env.getOrDefault("PATH", ""));
    env.put("JUPYTER_PATH", jupyter.toString());
    env.put("JUPYTER_CONFIG_DIR", jupyter.resolve("config").toString());
    env.put("JUPYTER_RUNTIME_DIR", jupyter.resolve("runtime").toString());
    env.put("IPYTHONDIR", jupyter.resolve("ipython").toString());
    env.put("MPLCONFIGDIR", jupyter.resolve("matplotlib").toString());
    env.put("PYDEVD_DISABLE_FILE_VALIDATION", "1");
  }

  /** A notebook's multi-line text (a string or a list of strings) as lines. */
  private static List<String> textOf(JsonNode node) {
    if (node == null || node.isMissingNode() || node.isNull()) {
      return List.of();
    }
    if (node.isTextual()) {
      return List.of(node.asText());
    }
    List<String> out = new ArrayList<>();
    node.forEach(n -> out.add(n.asText()));
    return out;
  }
}
