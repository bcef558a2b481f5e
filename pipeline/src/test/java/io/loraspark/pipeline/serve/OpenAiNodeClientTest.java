package io.loraspark.pipeline.serve;

import static io.loraspark.pipeline.serve.ServeClient.JSON;
import static io.loraspark.pipeline.serve.ServeClient.STORIES;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import io.loraspark.pipeline.testing.RandomAdapters;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code serve} driven end to end by the official OpenAI Node client ({@code openai} 7.60.0, pinned
 * in {@code src/test/node/package-lock.json}): the lock file is installed with {@code npm ci} into
 * {@code target/openai-node-client/}, a server on stories260K with adapters {@code alpha} and
 * {@code beta} (and {@code gamma} under an extra allowed root) listens on a loopback port, and
 * {@code node client.mjs <baseURL> <gamma dir>} runs every call once and prints one JSON object of
 * what it observed; the tests below assert on that object. Node.js and npm must be installed: the
 * test fails, naming the missing command, rather than skip. {@code -Dlora.node=PATH} and {@code
 * -Dlora.npm=PATH} choose the executables; otherwise they are looked up on {@code PATH}.
 */
class OpenAiNodeClientTest {
  static final Path NODE_SOURCES = Path.of("src/test/node");
  static final Path INSTALL_DIR = Path.of("target/openai-node-client");
  static final String PROMPT = "Once upon a time";
  static final int MAX_TOKENS = 20;
  static final Duration INSTALL_TIMEOUT = Duration.ofMinutes(3);
  static final Duration CLIENT_TIMEOUT = Duration.ofSeconds(90);

  @TempDir static Path dir;
  static Path adapters;
  static Path gamma;
  static ServeClient serve;
  static String baseUrl;

  /** What client.mjs printed. */
  static JsonNode seen;

  @BeforeAll
  static void installStartAndRunTheClient() throws Exception {
    String node = executable("node", "lora.node");
    String npm = executable("npm", "lora.npm");
    String nodeVersion = run(List.of(node, "--version"), Path.of("."), Duration.ofSeconds(30));
    assertThat(majorVersion(nodeVersion))
        .as("Node.js major version of %s (%s); the client needs >= 20", node, nodeVersion)
        .isGreaterThanOrEqualTo(20);
    Path work = copySources();
    run(List.of(npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"), work, INSTALL_TIMEOUT);

    ModelWeights base = CheckpointLoader.load(STORIES);
    adapters = dir.resolve("adapters");
    RandomAdapters.save(base, adapters.resolve("alpha"), 1, 0.3);
    RandomAdapters.save(base, adapters.resolve("beta"), 2, 0.3);
    gamma = dir.resolve("spare/gamma");
    RandomAdapters.save(base, gamma, 3, 0.3);
    serve = ServeClient.start(ServeClient.onStories(adapters, dir.resolve("spare")));
    baseUrl = serve.url + "/v1";

    String out = run(List.of(node, "client.mjs", baseUrl, gamma.toString()), work, CLIENT_TIMEOUT);
    System.err.println("client.mjs observed: " + out.strip());
    String last = out.strip().lines().reduce((a, b) -> b).orElse("");
    try {
      seen = JSON.readTree(last);
    } catch (IOException e) {
      throw new AssertionError("client.mjs did not print one JSON object; stdout:\n" + out, e);
    }
    assertThat(seen).as("client.mjs output").isNotNull();
  }

  @AfterAll
  static void stop() {
    if (serve != null) {
      serve.close();
    }
  }

  @Test
  void theInstalledClientIsThePinnedOne() {
    assertThat(seen.get("openai").asText()).isEqualTo("7.60.0");
  }

  @Test
  void modelsListTheBaseTheAdaptersAndTheRouter() {
    JsonNode m = step("models");
    List<String> ids = strings(m.get("ids"));
    assertThat(ids).contains("stories260K", "alpha", "beta", "auto");
    assertThat(strings(m.get("iterated"))).as("for await over models.list()").isEqualTo(ids);
    assertThat(strings(m.get("objects"))).containsExactly("model");
    assertThat(m.get("parents").get("alpha").asText()).isEqualTo("stories260K");
    assertThat(m.get("parents").get("beta").asText()).isEqualTo("stories260K");
    assertThat(m.get("parents").get("stories260K").isNull()).isTrue();
  }

  @Test
  void greedyCompletionEqualsGenerate() throws Exception {
    JsonNode c = step("completion");
    assertThat(c.get("object").asText()).isEqualTo("text_completion");
    assertThat(c.get("model").asText()).isEqualTo("alpha");
    assertThat(c.get("choices").asInt()).isEqualTo(1);
    assertThat(c.get("finish_reason").asText()).isEqualTo("length");
    assertThat(c.get("usage").get("completion_tokens").asInt()).isEqualTo(MAX_TOKENS);
    assertThat(c.get("text").asText())
        .as("the server's greedy alpha text vs generate's")
        .isNotEmpty()
        .isEqualTo(generate("alpha"));
  }

  @Test
  void streamedCompletionConcatenatesToThePlainText() {
    JsonNode plain = step("completion");
    JsonNode s = step("completionStream");
    assertThat(s.get("text").asText()).isEqualTo(plain.get("text").asText());
    assertThat(strings(s.get("finish_reasons"))).containsExactly("length");
    assertThat(strings(s.get("models"))).containsExactly("alpha");
    assertThat(strings(s.get("objects"))).containsExactly("text_completion");
    assertThat(s.get("chunks").asInt()).isGreaterThan(1);
    assertThat(s.get("usage")).as("stream_options.include_usage").isEqualTo(plain.get("usage"));
  }

  @Test
  void chatStreamConcatenatesToThePlainMessage() {
    JsonNode plain = step("chat");
    assertThat(plain.get("object").asText()).isEqualTo("chat.completion");
    assertThat(plain.get("model").asText()).isEqualTo("alpha");
    assertThat(plain.get("role").asText()).isEqualTo("assistant");
    assertThat(plain.get("content").asText()).isNotEmpty();
    assertThat(plain.get("finish_reason").asText()).isIn("length", "stop");
    JsonNode s = step("chatStream");
    assertThat(s.get("text").asText()).isEqualTo(plain.get("content").asText());
    assertThat(strings(s.get("finish_reasons")))
        .containsExactly(plain.get("finish_reason").asText());
    assertThat(strings(s.get("roles"))).containsExactly("assistant");
    assertThat(strings(s.get("objects"))).containsExactly("chat.completion.chunk");
    assertThat(strings(s.get("models"))).containsExactly("alpha");
  }

  @Test
  void anAdapterLoadedAtRunTimeAnswersUntilUnloaded() {
    JsonNode load = step("load");
    assertThat(load.get("answer").asText()).contains("gamma");
    assertThat(strings(load.get("listed"))).contains("gamma");
    JsonNode c = load.get("completion");
    assertThat(c.get("model").asText()).isEqualTo("gamma");
    assertThat(c.get("text").asText()).isNotEmpty();
    assertThat(c.get("finish_reason").asText()).isEqualTo("length");

    JsonNode unload = step("unload");
    assertThat(unload.get("answer").asText()).contains("gamma");
    assertThat(strings(unload.get("listed"))).doesNotContain("gamma");
    assertRejected(unload.get("after"), 404, "isNotFoundError", "model");
    assertThat(unload.get("after").get("code").asText()).isEqualTo("model_not_found");
    assertRejected(unload.get("again"), 404, "isNotFoundError", "lora_name");
  }

  @Test
  void autoAnswersAsOneOfTheAdaptersWithItsText() throws Exception {
    JsonNode c = step("auto");
    String chosen = c.get("model").asText();
    assertThat(chosen).isIn("alpha", "beta");
    assertThat(c.get("text").asText())
        .as("auto routed to %s: its text vs generate's", chosen)
        .isEqualTo(generate(chosen));
  }

  @Test
  void aBadTemperatureIsABadRequestError() {
    assertRejected(step("badRequest"), 400, "isBadRequestError", "temperature");
  }

  /** One step's observation; fails with the error it threw when it threw. */
  static JsonNode step(String name) {
    JsonNode s = seen.get(name);
    assertThat(s).as("client.mjs step %s", name).isNotNull();
    if (s.has("unexpected")) {
      fail("client.mjs step " + name + " threw: " + s.get("unexpected").toPrettyString());
    }
    return s;
  }

  /** A call the client rejected with the given status, error class and OpenAI error body. */
  static void assertRejected(JsonNode r, int status, String errorClass, String param) {
    assertThat(r.get("rejected").asBoolean()).as("rejected: %s", r).isTrue();
    assertThat(r.get("status").asInt()).as("status: %s", r).isEqualTo(status);
    assertThat(r.get(errorClass).asBoolean()).as("%s: %s", errorClass, r).isTrue();
    assertThat(r.get("isAPIError").asBoolean()).isTrue();
    JsonNode body = r.get("error");
    assertThat(body.isObject()).as("OpenAI error body: %s", r).isTrue();
    assertThat(body.get("message").asText()).isNotBlank().doesNotContain("\tat ");
    assertThat(body.get("type").asText()).isEqualTo("invalid_request_error");
    assertThat(body.has("code")).as("error.code present: %s", body).isTrue();
    assertThat(body.get("param").asText()).isEqualTo(param);
    assertThat(r.get("param").asText()).as("the client's APIError.param").isEqualTo(param);
  }

  /** generate's greedy completion of the prompt under the adapter, in-process through the CLI. */
  static String generate(String adapter) throws Exception {
    return ServeClient.generate(PROMPT, adapters.resolve(adapter), MAX_TOKENS);
  }

  static List<String> strings(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(v -> out.add(v.asText()));
    return out;
  }

  /** package.json, package-lock.json and the scripts, copied fresh (no node_modules of theirs). */
  static Path copySources() throws IOException {
    Path work = Files.createDirectories(INSTALL_DIR);
    try (Stream<Path> files = Files.list(NODE_SOURCES)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        String name = f.getFileName().toString();
        if (name.equals("package.json")
            || name.equals("package-lock.json")
            || name.endsWith(".mjs")) {
          Files.copy(f, work.resolve(name), StandardCopyOption.REPLACE_EXISTING);
        }
      }
    }
    assertThat(work.resolve("package-lock.json")).as("the lock file npm ci installs").exists();
    return work;
  }

  /** The executable named by the system property, else the first {@code name} on PATH. */
  static String executable(String name, String property) {
    String chosen = System.getProperty(property);
    if (chosen != null && !chosen.isBlank()) {
      if (!Files.isExecutable(Path.of(chosen))) {
        fail("-D" + property + "=" + chosen + " is not an executable file");
      }
      return chosen;
    }
    String path = System.getenv().getOrDefault("PATH", "");
    for (String d : path.split(File.pathSeparator)) {
      if (!d.isEmpty() && Files.isExecutable(Path.of(d, name))) {
        return Path.of(d, name).toString();
      }
    }
    throw new AssertionError(
        "'"
            + name
            + "' is not on PATH ("
            + path
            + "): this test drives the server with the OpenAI Node client and needs Node.js >= 20"
            + " and npm (e.g. apt-get install nodejs npm), or -D"
            + property
            + "=/path/to/"
            + name);
  }

  static int majorVersion(String version) {
    String v = version.strip();
    v = v.startsWith("v") ? v.substring(1) : v;
    int dot = v.indexOf('.');
    try {
      return Integer.parseInt(dot < 0 ? v : v.substring(0, dot));
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /**
   * Runs a command in {@code cwd}, its stdout and stderr into files beside it; returns stdout.
   *
   * @throws AssertionError naming the command, with its exit code and output, when it cannot be
   *     started, fails or outlives {@code timeout} (then it and its children are killed)
   */
  static String run(List<String> command, Path cwd, Duration timeout)
      throws IOException, InterruptedException {
    String shown = String.join(" ", command) + " (in " + cwd.toAbsolutePath() + ")";
    Path logs = Files.createDirectories(dir.resolve("logs"));
    Path stdout = Files.createTempFile(logs, "stdout", ".log");
    Path stderr = Files.createTempFile(logs, "stderr", ".log");
    ProcessBuilder pb =
        new ProcessBuilder(command)
            .directory(cwd.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectOutput(stdout.toFile())
            .redirectError(stderr.toFile());
    pb.environment().put("NO_UPDATE_NOTIFIER", "1");
    pb.environment().put("npm_config_update_notifier", "false");
    Process p;
    try {
      p = pb.start();
    } catch (IOException e) {
      throw new AssertionError("cannot start `" + shown + "`: " + e.getMessage(), e);
    }
    boolean done = p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
    if (!done) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
      p.waitFor(10, TimeUnit.SECONDS);
    }
    String out = Files.readString(stdout, StandardCharsets.UTF_8);
    String err = Files.readString(stderr, StandardCharsets.UTF_8);
    if (!done || p.exitValue() != 0) {
      throw new AssertionError(
          "`"
              + shown
              + "` "
              + (done ? "failed with exit code " + p.exitValue() : "timed out after " + timeout)
              + "\n--- stdout ---\n"
              + tail(out)
              + "\n--- stderr ---\n"
              + tail(err));
    }
    System.err.print(err);
    return out;
  }

  static String tail(String s) {
    return s.length() <= 8000 ? s : "…" + s.substring(s.length() - 8000);
  }
}
