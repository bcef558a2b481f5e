package io.loraspark.pipeline.serve;

import static io.loraspark.pipeline.serve.ServeClient.JSON;
import static io.loraspark.pipeline.serve.ServeClient.STORIES;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.SequenceInputStream;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@code serve} against hostile clients, loopback only: adapter names and paths that try to leave
 * the allowed roots (dot-dot, absolute paths, URIs, symbolic links), out-of-range and malformed
 * sampling values, bodies of many megabytes (with and without a length), a client that dribbles its
 * body over seconds and one that leaves mid-stream. Each gets a 4xx in OpenAI's error JSON (or is
 * answered or dropped cleanly) and the server keeps serving.
 */
class ServeHostileTest {
  static final String OK_BODY =
      "{\"model\": \"alpha\", \"prompt\": \"Once upon a time\", \"max_tokens\": 4,"
          + " \"temperature\": 0}";

  @TempDir static Path dir;
  static Path adapters;
  static Path spare;
  static Path outside;
  static ServeClient serve;

  @BeforeAll
  static void start() throws IOException {
    ModelWeights base = CheckpointLoader.load(STORIES);
    adapters = dir.resolve("adapters");
    spare = dir.resolve("spare");
    outside = dir.resolve("outside");
    save(base, adapters.resolve("alpha"));
    save(base, spare.resolve("gamma"));
    save(base, outside.resolve("delta"));
    serve = ServeClient.start(ServeClient.onStories(adapters, spare));
  }

  @AfterAll
  static void stop() {
    if (serve != null) {
      serve.close();
    }
  }

  /** After every test: the server is healthy and still completes a normal request. */
  @AfterEach
  void stillServing() throws Exception {
    assertThat(serve.get("/health").statusCode()).as("/health").isEqualTo(200);
    HttpResponse<String> r = serve.post("/v1/completions", OK_BODY);
    assertThat(r.statusCode()).as("a normal completion: %s", r.body()).isEqualTo(200);
    assertThat(JSON.readTree(r.body()).get("usage").get("completion_tokens").asInt()).isEqualTo(4);
  }

  static void save(ModelWeights base, Path to) {
    LoraConfig c = new LoraConfig(4, 8, 0, List.of(Projection.values()), false);
    PeftAdapter.save(to, LoraWeights.init(base, c, 1, DataType.FLOAT), null);
  }

  /** A 4xx with OpenAI's error JSON (one line, no stack trace), naming {@code param} if given. */
  static JsonNode assertError(HttpResponse<String> r, int status, String param) throws Exception {
    JsonNode e = ServeClient.assertError(r, status, param);
    assertThat(e.get("message").asText()).as(r.body()).doesNotContain("\n");
    assertThat(e.has("type") && e.has("param") && e.has("code")).as(r.body()).isTrue();
    return e;
  }

  static void assert4xx(HttpResponse<String> r, String what) throws Exception {
    assertThat(r.statusCode()).as("%s: status, body %s", what, r.body()).isBetween(400, 499);
    JsonNode e = JSON.readTree(r.body()).get("error");
    assertThat(e).as("%s: OpenAI error JSON: %s", what, r.body()).isNotNull();
    assertThat(e.get("message").asText()).doesNotContain("\tat ");
  }

  static HttpResponse<String> load(String name, String path) throws Exception {
    return serve.post(
        "/v1/load_lora_adapter",
        JSON.createObjectNode().put("lora_name", name).put("lora_path", path).toString());
  }

  static String completion(String extra) {
    return "{\"model\": \"alpha\", \"prompt\": \"Once\", \"max_tokens\": 2" + extra + "}";
  }

  @Test
  void adapterPathsThatLeaveTheAllowedRootsAreRefused() throws Exception {
    Path delta = outside.resolve("delta");
    List<String> paths =
        List.of(
            "../..",
            "..",
            "/",
            "/etc",
            "/etc/passwd",
            "/proc/self/cwd",
            delta.toString(),
            spare + "/../outside/delta",
            spare + "/gamma/../../outside/delta",
            adapters + "/../outside/delta",
            "../../../../../../../../../../etc",
            "file://" + delta,
            "file:///etc",
            "file:" + spare + "/../outside/delta",
            "hdfs://localhost:9000/adapters/delta",
            "s3a://bucket/adapters/delta",
            serve.url + "/v1/models",
            "~",
            "gamma",
            "spare/gamma",
            "alpha",
            "a\u0000b");
    for (String p : paths) {
      assertError(load("evil", p), 400, "lora_path");
    }
    assertThat(serve.modelIds()).as("nothing was registered").doesNotContain("evil");
  }

  @Test
  void symbolicLinksOutOfAnAllowedRootAreRefused() throws Exception {
    Path delta = outside.resolve("delta");
    // a directory link inside the allowed root pointing outside
    Path link = Files.createSymbolicLink(spare.resolve("link"), delta);
    assertError(load("linked", link.toString()), 400, "lora_path");
    // a relative link that climbs out
    Path climb = Files.createSymbolicLink(spare.resolve("climb"), Path.of("../outside/delta"));
    assertError(load("climb", climb.toString()), 400, "lora_path");
    // a real directory inside the root whose files are links outside
    Path sneaky = Files.createDirectories(spare.resolve("sneaky"));
    for (String f : List.of(PeftAdapter.CONFIG_FILE, "adapter_model.safetensors")) {
      Files.createSymbolicLink(sneaky.resolve(f), delta.resolve(f));
    }
    assertError(load("sneaky", sneaky.toString()), 400, "lora_path");
    // a link inside the --adapters directory, created after start: not a known model
    Files.createSymbolicLink(adapters.resolve("evil"), delta);
    assertError(
        serve.post("/v1/completions", completion("").replace("alpha", "evil")), 404, "model");
    assertError(load("evil2", adapters.resolve("evil").toString()), 400, "lora_path");
    assertThat(serve.modelIds()).doesNotContain("linked", "climb", "sneaky", "evil", "evil2");
  }

  /** A link to itself: resolving it fails with ELOOP, which is the client's bad path (4xx). */
  @Test
  void aSymbolicLinkLoopIsRefusedAsABadPath() throws Exception {
    Path loop = spare.resolve("loop");
    Files.createSymbolicLink(loop, loop.getFileName());
    assertError(load("loop", loop.toString()), 400, "lora_path");
  }

  /** Directories inside the allowed root that are not (whole) adapters are refused with 400. */
  @Test
  void brokenAdapterDirectoriesInsideTheRootAre400() throws Exception {
    assertError(load("root", spare.toString()), 400, "lora_path");
    assertError(
        load("file", spare.resolve("gamma/adapter_model.safetensors").toString()),
        400,
        "lora_path");
    Path garbage = Files.createDirectories(spare.resolve("garbage"));
    Files.writeString(garbage.resolve(PeftAdapter.CONFIG_FILE), "{not json");
    assertError(load("garbage", garbage.toString()), 400, "lora_path");
    Path noWeights = Files.createDirectories(spare.resolve("no-weights"));
    Files.copy(
        spare.resolve("gamma").resolve(PeftAdapter.CONFIG_FILE),
        noWeights.resolve(PeftAdapter.CONFIG_FILE));
    assertError(load("no-weights", noWeights.toString()), 400, "lora_path");
    Path truncated = Files.createDirectories(spare.resolve("truncated"));
    Files.copy(
        spare.resolve("gamma").resolve(PeftAdapter.CONFIG_FILE),
        truncated.resolve(PeftAdapter.CONFIG_FILE));
    byte[] weights = Files.readAllBytes(spare.resolve("gamma/adapter_model.safetensors"));
    Files.write(
        truncated.resolve("adapter_model.safetensors"), Arrays.copyOf(weights, weights.length / 2));
    assertError(load("truncated", truncated.toString()), 400, "lora_path");
    assertThat(serve.modelIds())
        .doesNotContain("root", "file", "garbage", "no-weights", "truncated");
  }

  @Test
  void namesThatTryToLeaveTheRootAreUnknownOrRefused() throws Exception {
    for (String name :
        List.of(
            "..",
            "../outside/delta",
            "../../outside/delta",
            "./alpha",
            "alpha/..",
            "/etc",
            outside.resolve("delta").toString(),
            "spare/gamma",
            "gamma")) {
      String asModel = JSON.createObjectNode().put("model", name).put("prompt", "x").toString();
      assertError(serve.post("/v1/completions", asModel), 404, "model");
      ObjectNode composed = JSON.createObjectNode().put("model", "stories260K").put("prompt", "x");
      composed.putArray("adapters").addObject().put("name", name).put("weight", 1);
      assertError(serve.post("/v1/completions", composed.toString()), 404, "model");
      assertError(
          serve.post(
              "/v1/unload_lora_adapter", JSON.createObjectNode().put("lora_name", name).toString()),
          404,
          "lora_name");
    }
    // a dot-dot name with a path outside: the path is what is refused
    assertError(load("../../outside/delta", outside.resolve("delta").toString()), 400, "lora_path");
    // reserved and taken names
    assertError(load("auto", spare.resolve("gamma").toString()), 400, "lora_name");
    assertError(load("stories260K", spare.resolve("gamma").toString()), 400, "lora_name");
    assertError(load("alpha", outside.resolve("delta").toString()), 400, null);
    assertThat(serve.modelIds()).containsExactly("stories260K", "alpha", "auto");
  }

  @Test
  void hugeTokenCountsAre400() throws Exception {
    for (String v : List.of("100000000", "2147483647", "2147483648", "1e12", "511", "-1", "1.5")) {
      assertError(serve.post("/v1/completions", completion("").replace("2", v)), 400, "max_tokens");
    }
    String chat =
        "{\"model\": \"alpha\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],"
            + " \"max_completion_tokens\": 1000000000}";
    assertError(serve.post("/v1/chat/completions", chat), 400, "max_completion_tokens");
    assertError(
        serve.post(
            "/v1/completions",
            "{\"model\": \"alpha\", \"prompt\": [1, 2, 3], \"max_tokens\": 510}"),
        400,
        "max_tokens");
  }

  @Test
  void badSamplingValuesAre400NamingTheField() throws Exception {
    Object[][] cases = {
      {"temperature", "-0.5"},
      {"temperature", "2.5"},
      {"temperature", "\"0.7\""},
      {"temperature", "\"NaN\""},
      {"temperature", "\"Infinity\""},
      {"temperature", "1e999"},
      {"temperature", "-1e999"},
      {"temperature", "true"},
      {"temperature", "[0.5]"},
      {"temperature", "{}"},
      {"top_p", "-1"},
      {"top_p", "0"},
      {"top_p", "1.5"},
      {"top_p", "\"NaN\""},
      {"top_p", "1e999"},
      {"top_k", "-2"},
      {"top_k", "1.5"},
      {"top_k", "\"5\""},
      {"top_k", "99999999999"},
      {"seed", "\"x\""},
      {"seed", "1e30"},
      {"seed", "0.5"},
      {"n", "0"},
      {"n", "-1"},
      {"presence_penalty", "\"NaN\""},
      {"frequency_penalty", "3"},
      {"logprobs", "5"},
      {"logprobs", "-1"},
      {"stop", "[\"a\", \"b\", \"c\", \"d\", \"e\"]"},
      {"stop", "\"\""},
      {"stop", "7"},
      {"stream", "\"yes\""},
      {"stream", "1"},
      {"ignore_eos", "\"yes\""}
    };
    for (Object[] c : cases) {
      String field = (String) c[0];
      HttpResponse<String> r =
          serve.post("/v1/completions", completion(", \"" + field + "\": " + c[1]));
      assertThat(r.statusCode()).as("%s = %s", field, c[1]).isEqualTo(400);
      assertError(r, 400, field);
    }
    ObjectNode composed = JSON.createObjectNode().put("model", "stories260K").put("prompt", "x");
    composed.putArray("adapters").addObject().put("name", "alpha").put("weight", "NaN");
    assertThat(
            assertError(serve.post("/v1/completions", composed.toString()), 400, null)
                .get("param")
                .asText())
        .contains("weight");
  }

  /** JSON has no NaN or Infinity literal: unquoted, the body is malformed (400, no param). */
  @Test
  void nonJsonNumberLiteralsAreMalformedJson() throws Exception {
    for (String v : List.of("NaN", "-NaN", "Infinity", "-Infinity", "+1", "0x10", ".5", "01")) {
      HttpResponse<String> r = serve.post("/v1/completions", completion(", \"temperature\": " + v));
      JsonNode e = assertError(r, 400, null);
      assertThat(e.get("param").isNull()).as("%s: %s", v, r.body()).isTrue();
    }
    String loadNaN = "{\"lora_name\": \"x\", \"lora_path\": NaN}";
    assertError(serve.post("/v1/load_lora_adapter", loadNaN), 400, null);
  }

  @Test
  void malformedAndDeepBodiesAre400() throws Exception {
    List<String> bodies =
        List.of(
            "",
            "null",
            "\"x\"",
            "{",
            "{}}",
            "{} {}",
            "{\"model\": \"alpha\", \"model\": \"alpha\", \"prompt\": \"x\"}",
            "{\"model\": \"alpha\", \"prompt\": \"x\",}",
            "{model: \"alpha\"}",
            "[".repeat(100_000),
            "{\"a\":".repeat(50_000),
            "{\"model\": \"alpha\", \"prompt\": \"x\", \"max_tokens\": " + "9".repeat(5000) + "}");
    for (String b : bodies) {
      assertError(serve.post("/v1/completions", b), 400, null);
      assertError(serve.post("/v1/chat/completions", b), 400, null);
    }
    byte[] badUtf8 =
        "{\"model\": \"alpha\", \"prompt\": \"\u00ff\"}".getBytes(StandardCharsets.ISO_8859_1);
    assertError(serve.postBytes("/v1/completions", badUtf8), 400, null);
  }

  /** Text the tokenizer may choke on: lone surrogates, NULs, control characters. */
  @Test
  void oddUnicodeIsAnsweredOrRefusedNeverA500() throws Exception {
    for (String text :
        List.of("\\ud800", "\\udfff x", "a\\u0000b", "\\u0007\\u001b[31m", "\\ufeff")) {
      HttpResponse<String> plain =
          serve.post(
              "/v1/completions",
              "{\"model\": \"alpha\", \"prompt\": \"" + text + "\", \"max_tokens\": 2}");
      assertThat(plain.statusCode()).as("prompt %s: %s", text, plain.body()).isIn(200, 400);
      HttpResponse<String> chat =
          serve.post(
              "/v1/chat/completions",
              "{\"model\": \"alpha\", \"max_tokens\": 2, \"messages\": [{\"role\": \"user\","
                  + " \"content\": \""
                  + text
                  + "\"}], \"stop\": \""
                  + text
                  + "\"}");
      assertThat(chat.statusCode()).as("chat %s: %s", text, chat.body()).isIn(200, 400);
    }
  }

  /** Over the 4 MB limit with a Content-Length: 413 (or the connection closed), still serving. */
  @Test
  void aBodyOfManyMegabytesIsRefused() throws Exception {
    byte[] big = new byte[16 << 20];
    Arrays.fill(big, (byte) ' ');
    try {
      HttpResponse<String> r =
          serve.send(
              serve
                  .request("/v1/completions")
                  .timeout(Duration.ofSeconds(60))
                  .POST(HttpRequest.BodyPublishers.ofByteArray(big))
                  .build());
      assertThat(r.statusCode()).as(r.body()).isIn(413, 400);
    } catch (IOException closedEarly) {
      // the server may answer 413 and close before the client has sent everything
    }
  }

  /**
   * Without a Content-Length (chunked), a body over the 4 MB limit must be refused too: here a
   * valid 6 MB request whose padding is in the {@code user} field. Answering it means the limit can
   * be bypassed, and any chunked body is read whole into memory.
   */
  @Test
  void aChunkedBodyOverTheLimitIsRefusedToo() throws Exception {
    byte[] head =
        "{\"model\": \"alpha\", \"prompt\": \"Once\", \"max_tokens\": 1, \"user\": \""
            .getBytes(StandardCharsets.UTF_8);
    byte[] pad = new byte[6 << 20];
    Arrays.fill(pad, (byte) 'x');
    byte[] tail = "\"}".getBytes(StandardCharsets.UTF_8);
    HttpResponse<String> r;
    try {
      r =
          serve.send(
              serve
                  .request("/v1/completions")
                  .timeout(Duration.ofSeconds(60))
                  .header("Content-Type", "application/json")
                  .POST(
                      HttpRequest.BodyPublishers.ofInputStream(
                          () ->
                              new SequenceInputStream(
                                  new SequenceInputStream(
                                      new ByteArrayInputStream(head),
                                      new ByteArrayInputStream(pad)),
                                  new ByteArrayInputStream(tail))))
                  .build());
    } catch (IOException closedEarly) {
      return; // refused before the whole body was read
    }
    assertThat(r.statusCode())
        .as(
            "a 6 MB chunked body (limit %d bytes) was answered: %s",
            LoraServer.MAX_BODY_BYTES, r.body())
        .isIn(413, 400);
  }

  /** A client that sends its request a few bytes at a time over ~2 s; others are still served. */
  @Test
  void aSlowClientIsAnsweredAndDoesNotBlockOthers() throws Exception {
    byte[] body = OK_BODY.getBytes(StandardCharsets.UTF_8);
    byte[] request =
        ("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: "
                + body.length
                + "\r\nConnection: close\r\n\r\n"
                + OK_BODY)
            .getBytes(StandardCharsets.UTF_8);
    try (Socket s = new Socket("127.0.0.1", serve.port)) {
      s.setSoTimeout(30_000);
      OutputStream out = s.getOutputStream();
      int pieces = 40;
      int step = (request.length + pieces - 1) / pieces;
      CompletableFuture<HttpResponse<String>> meanwhile = null;
      long sentAt = 0;
      for (int off = 0, i = 0; off < request.length; off += step, i++) {
        out.write(request, off, Math.min(step, request.length - off));
        out.flush();
        Thread.sleep(50);
        if (i == pieces / 4) {
          meanwhile =
              serve.sendAsync(
                  serve
                      .request("/v1/completions")
                      .timeout(Duration.ofSeconds(30))
                      .POST(HttpRequest.BodyPublishers.ofString(OK_BODY))
                      .build());
        }
        if (i == 3 * pieces / 4) {
          assertThat(meanwhile).isNotNull();
          assertThat(meanwhile.get(15, TimeUnit.SECONDS).statusCode())
              .as("a normal request, answered while the slow one is still sending")
              .isEqualTo(200);
          sentAt = System.nanoTime();
        }
      }
      assertThat(sentAt).isPositive();
      String response = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertThat(response).startsWith("HTTP/1.1 200");
      JsonNode answer = JSON.readTree(response.substring(response.indexOf("\r\n\r\n") + 4));
      assertThat(answer.get("usage").get("completion_tokens").asInt()).isEqualTo(4);
    }
  }

  /** Headers sent, then a body that stops short and the client goes away: nothing is left over. */
  @Test
  void aClientThatStallsAndLeavesIsDroppedCleanly() throws Exception {
    try (Socket s = new Socket("127.0.0.1", serve.port)) {
      OutputStream out = s.getOutputStream();
      out.write(
          ("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n"
                  + "{\"model\": \"alpha\", ")
              .getBytes(StandardCharsets.UTF_8));
      out.flush();
      Thread.sleep(500);
      assertThat(serve.get("/health").statusCode()).isEqualTo(200);
    }
    try (Socket s = new Socket("127.0.0.1", serve.port)) { // half a request line
      s.getOutputStream().write("POST /v1/compl".getBytes(StandardCharsets.UTF_8));
      Thread.sleep(200);
    }
  }

  /** A streaming client that reads the first event and disconnects: its request leaves. */
  @Test
  void aStreamingClientThatLeavesFreesItsSlot() throws Exception {
    byte[] body =
        ("{\"model\": \"alpha\", \"prompt\": \"Once\", \"max_tokens\": 500, \"temperature\": 0,"
                + " \"stream\": true}")
            .getBytes(StandardCharsets.UTF_8);
    for (int k = 0; k < 3; k++) {
      try (Socket s = new Socket("127.0.0.1", serve.port)) {
        s.setSoTimeout(30_000);
        OutputStream out = s.getOutputStream();
        out.write(
            ("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type:"
                    + " application/json\r\nContent-Length: "
                    + body.length
                    + "\r\n\r\n")
                .getBytes(StandardCharsets.UTF_8));
        out.write(body);
        out.flush();
        InputStream in = s.getInputStream();
        ByteArrayOutputStream seen = new ByteArrayOutputStream();
        while (!seen.toString(StandardCharsets.UTF_8).contains("data: ")) {
          int b = in.read();
          assertThat(b).as("response so far: %s", seen).isNotNegative();
          seen.write(b);
        }
        assertThat(seen.toString(StandardCharsets.UTF_8)).startsWith("HTTP/1.1 200");
      }
    }
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    double inFlight;
    do {
      Thread.sleep(100);
      Matcher m =
          Pattern.compile("(?m)^lora_requests_in_flight (\\S+)$")
              .matcher(serve.get("/metrics").body());
      assertThat(m.find()).isTrue();
      inFlight = Double.parseDouble(m.group(1));
    } while (inFlight > 0 && System.nanoTime() < end);
    assertThat(inFlight).as("requests in flight after the clients left").isZero();
  }

  @Test
  void wrongMethodsAndPathsGetJsonErrors() throws Exception {
    assert4xx(serve.get("/v1/completions"), "GET /v1/completions");
    for (String path :
        List.of("/v1/../etc/passwd", "/v1/models/../../../etc/passwd", "/%2e%2e/etc/passwd")) {
      HttpResponse<String> dots = serve.get(path);
      assertThat(dots.statusCode()).as(path).isBetween(400, 499);
      assertThat(dots.body()).doesNotContain("root:");
    }
    assert4xx(serve.post("/v1/nope", "{}"), "unknown route");
    HttpResponse<String> r =
        serve.send(
            serve
                .request("/v1/completions")
                .method("DELETE", HttpRequest.BodyPublishers.noBody())
                .build());
    assertThat(r.statusCode()).isBetween(400, 499);
  }
}
