package io.loraspark.pipeline.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.pipeline.cli.Main;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * {@code serve} over real HTTP (the JDK's client, loopback only) on stories260K with two adapters:
 * answers equal {@code generate}'s, streams concatenate to the plain answer, adapters load and
 * unload at run time, and every bad request gets its 4xx in OpenAI's error JSON.
 */
class ServeTest {
  static final Path STORIES = Path.of("../models/stories260K");
  static final ObjectMapper JSON = new ObjectMapper();
  static final HttpClient HTTP =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  @TempDir static Path dir;
  static Path adapters;
  static LoraServer server;
  static String url;

  @BeforeAll
  static void start() {
    ModelWeights base = CheckpointLoader.load(STORIES);
    adapters = dir.resolve("adapters");
    save(base, adapters.resolve("alpha"), 1);
    save(base, adapters.resolve("beta"), 2);
    save(base, dir.resolve("spare/gamma"), 3);
    save(base, dir.resolve("outside/delta"), 4);
    ServeOptions o =
        new ServeOptions(
            STORIES,
            adapters,
            null,
            Map.of(),
            List.of(dir.resolve("spare")),
            64L << 20,
            64,
            8,
            8,
            null);
    server = o.build();
    url = "http://127.0.0.1:" + server.start("127.0.0.1", 0);
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  static void save(ModelWeights base, Path to, long seed) {
    LoraConfig c = new LoraConfig(4, 8, 0, List.of(Projection.values()), false);
    LoraWeights w = LoraWeights.init(base, c, seed, DataType.FLOAT);
    Random rnd = new Random(seed);
    for (LoraWeights.Module m : w.modules()) {
      float[] v = new float[(int) m.b().length()];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) (0.3 * rnd.nextGaussian());
      }
      m.b().assign(Nd4j.create(v, m.b().shape(), 'c'));
    }
    PeftAdapter.save(to, w, null);
  }

  static HttpResponse<String> post(String path, String body) throws Exception {
    return HTTP.send(
        HttpRequest.newBuilder(URI.create(url + path))
            .timeout(Duration.ofSeconds(60))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  static HttpResponse<String> get(String path) throws Exception {
    return HTTP.send(
        HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofSeconds(30)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  static JsonNode ok(HttpResponse<String> r) throws Exception {
    assertThat(r.statusCode()).as("status, body: %s", r.body()).isEqualTo(200);
    return JSON.readTree(r.body());
  }

  /** generate's completion for the same prompt and adapter, in-process through the CLI. */
  static String generate(String prompt, String adapter, int tokens) throws Exception {
    List<String> args =
        new ArrayList<>(
            List.of(
                "generate",
                "--model",
                STORIES.toString(),
                "--prompt",
                prompt,
                "--json",
                "--max-new-tokens",
                Integer.toString(tokens)));
    if (adapter != null) {
      args.addAll(List.of("--adapter", adapters.resolve(adapter).toString()));
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int code =
        Main.execute(
            args.toArray(String[]::new),
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    assertThat(code).isZero();
    return JSON.readTree(out.toString(StandardCharsets.UTF_8)).get("completion").asText();
  }

  @Test
  void healthAndModels() throws Exception {
    assertThat(get("/health").statusCode()).isEqualTo(200);
    JsonNode models = ok(get("/v1/models"));
    List<String> ids = new ArrayList<>();
    models.get("data").forEach(m -> ids.add(m.get("id").asText()));
    assertThat(ids).containsExactly("stories260K", "alpha", "beta", "auto");
    assertThat(models.get("data").get(1).get("parent").asText()).isEqualTo("stories260K");
  }

  @Test
  void greedyAnswersEqualGenerate() throws Exception {
    for (String model : new String[] {"stories260K", "alpha", "beta"}) {
      JsonNode r =
          ok(
              post(
                  "/v1/completions",
                  "{\"model\": \""
                      + model
                      + "\", \"prompt\": \"Once upon a time\","
                      + " \"max_tokens\": 24, \"temperature\": 0}"));
      String want = generate("Once upon a time", model.equals("stories260K") ? null : model, 24);
      assertThat(r.get("choices").get(0).get("text").asText()).as(model).isEqualTo(want);
      assertThat(r.get("model").asText()).isEqualTo(model);
      assertThat(r.get("usage").get("prompt_tokens").asInt()).isEqualTo(5);
      assertThat(r.get("usage").get("completion_tokens").asInt()).isEqualTo(24);
      assertThat(r.get("choices").get(0).get("finish_reason").asText()).isEqualTo("length");
    }
  }

  @Test
  void streamedDeltasConcatenateToThePlainAnswer() throws Exception {
    for (boolean chat : new boolean[] {false, true}) {
      String path = chat ? "/v1/chat/completions" : "/v1/completions";
      String input =
          chat
              ? "\"messages\": [{\"role\": \"user\", \"content\": \"Tell a story.\"}]"
              : "\"prompt\": \"Once upon a time\"";
      String body =
          "{\"model\": \"alpha\", "
              + input
              + ", \"max_tokens\": 30, \"temperature\": 0.8,"
              + " \"seed\": 4, \"stop\": [\"park\"]";
      JsonNode plain = ok(post(path, body + "}"));
      HttpResponse<String> sse =
          post(path, body + ", \"stream\": true, \"stream_options\": {\"include_usage\": true}}");
      assertThat(sse.statusCode()).isEqualTo(200);
      assertThat(sse.headers().firstValue("content-type").orElse(""))
          .startsWith("text/event-stream");
      StringBuilder text = new StringBuilder();
      String finish = null;
      JsonNode usage = null;
      List<String> events = List.of(sse.body().split("\n\n"));
      assertThat(events.get(events.size() - 1)).isEqualTo("data: [DONE]");
      for (String e : events.subList(0, events.size() - 1)) {
        assertThat(e).startsWith("data: ");
        JsonNode chunk = JSON.readTree(e.substring(6));
        if (chunk.get("choices").isEmpty()) {
          usage = chunk.get("usage");
          continue;
        }
        JsonNode choice = chunk.get("choices").get(0);
        JsonNode piece = chat ? choice.get("delta").get("content") : choice.get("text");
        if (piece != null && !piece.isNull()) {
          text.append(piece.asText());
        }
        if (!choice.get("finish_reason").isNull()) {
          finish = choice.get("finish_reason").asText();
        }
      }
      JsonNode choice = plain.get("choices").get(0);
      String want =
          chat ? choice.get("message").get("content").asText() : choice.get("text").asText();
      assertThat(text.toString()).as("chat=%s", chat).isEqualTo(want);
      assertThat(finish).isEqualTo(choice.get("finish_reason").asText());
      assertThat(usage).isEqualTo(plain.get("usage"));
    }
  }

  @Test
  void composedHalvesEqualTheAdapter() throws Exception {
    String prompt = "\"prompt\": \"Once upon a time\", \"max_tokens\": 20, \"temperature\": 0";
    JsonNode once = ok(post("/v1/completions", "{\"model\": \"alpha\", " + prompt + "}"));
    JsonNode halves =
        ok(
            post(
                "/v1/completions",
                "{\"model\": \"stories260K\", "
                    + prompt
                    + ", \"adapters\": [{\"name\": \"alpha\", \"weight\": 0.5}, {\"name\": \"alpha\","
                    + " \"weight\": 0.5}]}"));
    assertThat(halves.get("choices").get(0).get("text"))
        .isEqualTo(once.get("choices").get(0).get("text"));
  }

  @Test
  void adaptersLoadAndUnloadAtRunTime() throws Exception {
    String ask = "{\"model\": \"gamma\", \"prompt\": \"Once\", \"max_tokens\": 4}";
    assertError(post("/v1/completions", ask), 404, "model");
    String gamma = dir.resolve("spare/gamma").toString();
    assertThat(
            post(
                    "/v1/load_lora_adapter",
                    "{\"lora_name\": \"gamma\", \"lora_path\": \"" + gamma + "\"}")
                .statusCode())
        .isEqualTo(200);
    ok(post("/v1/completions", ask));
    assertThat(post("/v1/unload_lora_adapter", "{\"lora_name\": \"gamma\"}").statusCode())
        .isEqualTo(200);
    assertError(post("/v1/completions", ask), 404, "model");
    assertError(post("/v1/unload_lora_adapter", "{\"lora_name\": \"gamma\"}"), 404, "lora_name");
    String outside = dir.resolve("outside/delta").toString();
    assertError(
        post(
            "/v1/load_lora_adapter",
            "{\"lora_name\": \"delta\", \"lora_path\": \"" + outside + "\"}"),
        400,
        "lora_path");
    assertError(
        post(
            "/v1/load_lora_adapter",
            "{\"lora_name\": \"x\", \"lora_path\": \""
                + adapters.resolve("../outside/delta")
                + "\"}"),
        400,
        "lora_path");
  }

  @Test
  void badRequestsGetOpenAiErrors() throws Exception {
    assertError(post("/v1/completions", "{\"model\": \"alpha\", \"prompt\": "), 400, null);
    assertError(post("/v1/completions", "[1, 2]"), 400, null);
    assertError(post("/v1/completions", "{\"prompt\": \"x\"}"), 400, "model");
    assertError(post("/v1/completions", "{\"model\": \"nope\", \"prompt\": \"x\"}"), 404, "model");
    assertError(
        post("/v1/completions", "{\"model\": \"alpha\", \"prompt\": \"x\", \"temperature\": -1}"),
        400,
        "temperature");
    assertError(
        post(
            "/v1/completions",
            "{\"model\": \"alpha\", \"prompt\": \"x\", \"temperature\": \"hot\"}"),
        400,
        "temperature");
    assertError(
        post("/v1/completions", "{\"model\": \"alpha\", \"prompt\": \"x\", \"top_p\": 0}"),
        400,
        "top_p");
    assertError(
        post("/v1/completions", "{\"model\": \"alpha\", \"prompt\": \"x\", \"n\": 2}"), 400, "n");
    assertError(
        post(
            "/v1/completions",
            "{\"model\": \"alpha\", \"prompt\": \"x\", \"max_tokens\": 100000000}"),
        400,
        "max_tokens");
    assertError(
        post(
            "/v1/completions",
            "{\"model\": \"alpha\", \"prompt\": \"" + "Once upon a time ".repeat(400) + "\"}"),
        413,
        "messages");
    assertError(
        post("/v1/completions", "{\"model\": \"alpha\", \"prompt\": [1, 99999]}"), 400, "prompt");
    assertError(
        post(
            "/v1/chat/completions",
            "{\"model\": \"alpha\", \"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}"),
        400,
        "messages[0].role");
    assertError(
        post(
            "/v1/chat/completions",
            "{\"model\": \"alpha\", \"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}]}"),
        400,
        "messages");
    byte[] big = new byte[(int) LoraServer.MAX_BODY_BYTES + 1024];
    java.util.Arrays.fill(big, (byte) ' ');
    HttpResponse<String> huge =
        HTTP.send(
            HttpRequest.newBuilder(URI.create(url + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofByteArray(big))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(huge.statusCode()).isEqualTo(413);
    assertThat(get("/health").statusCode()).as("still serving").isEqualTo(200);
    ok(
        post(
            "/v1/completions",
            "{\"model\": \"alpha\", \"prompt\": \"x\", \"max_tokens\": 2, \"n\": 1,"
                + " \"presence_penalty\": 0, \"user\": \"u\", \"echo\": false}"));
  }

  @Test
  void metricsCountRequestsAndTheCache() throws Exception {
    ok(post("/v1/completions", "{\"model\": \"beta\", \"prompt\": \"x\", \"max_tokens\": 3}"));
    String m = get("/metrics").body();
    assertThat(m).contains("lora_requests_total{endpoint=\"completions\",status=\"200\"");
    assertThat(m).contains("lora_adapter_cache{stat=\"bytes\"");
    assertThat(m).contains("lora_time_to_first_token_seconds_bucket");
  }

  static void assertError(HttpResponse<String> r, int status, String param) throws Exception {
    assertThat(r.statusCode()).as("body %s", r.body()).isEqualTo(status);
    JsonNode e = JSON.readTree(r.body()).get("error");
    assertThat(e).as("OpenAI error JSON: %s", r.body()).isNotNull();
    assertThat(e.get("message").asText()).isNotBlank().doesNotContain("\tat ");
    if (param != null) {
      assertThat(e.get("param").asText()).isEqualTo(param);
    }
  }
}
