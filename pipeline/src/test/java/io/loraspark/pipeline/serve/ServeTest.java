package io.loraspark.pipeline.serve;

import static io.loraspark.pipeline.serve.ServeClient.JSON;
import static io.loraspark.pipeline.serve.ServeClient.STORIES;
import static io.loraspark.pipeline.serve.ServeClient.assertError;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.loraspark.pipeline.testing.RandomAdapters;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.precision.Precision;
import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code serve} over real HTTP (the JDK's client, loopback only) on stories260K with two adapters:
 * answers equal {@code generate}'s, streams concatenate to the plain answer, adapters load and
 * unload at run time, and every bad request gets its 4xx in OpenAI's error JSON.
 */
class ServeTest {
  @TempDir static Path dir;
  static Path adapters;
  static ServeClient serve;

  @BeforeAll
  static void start() {
    ModelWeights base = CheckpointLoader.load(STORIES);
    adapters = dir.resolve("adapters");
    RandomAdapters.save(base, adapters.resolve("alpha"), 1, 0.3);
    RandomAdapters.save(base, adapters.resolve("beta"), 2, 0.3);
    RandomAdapters.save(base, dir.resolve("spare/gamma"), 3, 0.3);
    RandomAdapters.save(base, dir.resolve("outside/delta"), 4, 0.3);
    // HttpClient's default version: HTTP/2 preferred (an h2c upgrade offered over plain http)
    serve =
        ServeClient.start(
            ServeClient.onStories(adapters, dir.resolve("spare")), HttpClient.Version.HTTP_2);
  }

  @AfterAll
  static void stop() {
    serve.close();
  }

  static JsonNode ok(HttpResponse<String> r) throws Exception {
    assertThat(r.statusCode()).as("status, body: %s", r.body()).isEqualTo(200);
    return JSON.readTree(r.body());
  }

  /** generate's completion for the same prompt and adapter, in-process through the CLI. */
  static String generate(String prompt, String adapter, int tokens) throws Exception {
    return ServeClient.generate(prompt, adapter == null ? null : adapters.resolve(adapter), tokens);
  }

  @Test
  void healthAndModels() throws Exception {
    assertThat(serve.get("/health").statusCode()).isEqualTo(200);
    JsonNode models = ok(serve.get("/v1/models"));
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
              serve.post(
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
      JsonNode plain = ok(serve.post(path, body + "}"));
      HttpResponse<String> sse =
          serve.post(
              path, body + ", \"stream\": true, \"stream_options\": {\"include_usage\": true}}");
      assertThat(sse.statusCode()).isEqualTo(200);
      assertThat(sse.headers().firstValue("content-type").orElse(""))
          .startsWith("text/event-stream");
      StringBuilder text = new StringBuilder();
      String finish = null;
      JsonNode usage = null;
      List<String> events = ServeClient.events(sse.body());
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
    JsonNode once = ok(serve.post("/v1/completions", "{\"model\": \"alpha\", " + prompt + "}"));
    JsonNode halves =
        ok(
            serve.post(
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
    assertError(serve.post("/v1/completions", ask), 404, "model");
    String gamma = dir.resolve("spare/gamma").toString();
    assertThat(
            serve
                .post(
                    "/v1/load_lora_adapter",
                    "{\"lora_name\": \"gamma\", \"lora_path\": \"" + gamma + "\"}")
                .statusCode())
        .isEqualTo(200);
    ok(serve.post("/v1/completions", ask));
    assertThat(serve.post("/v1/unload_lora_adapter", "{\"lora_name\": \"gamma\"}").statusCode())
        .isEqualTo(200);
    assertError(serve.post("/v1/completions", ask), 404, "model");
    assertError(
        serve.post("/v1/unload_lora_adapter", "{\"lora_name\": \"gamma\"}"), 404, "lora_name");
    String outside = dir.resolve("outside/delta").toString();
    assertError(
        serve.post(
            "/v1/load_lora_adapter",
            "{\"lora_name\": \"delta\", \"lora_path\": \"" + outside + "\"}"),
        400,
        "lora_path");
    assertError(
        serve.post(
            "/v1/load_lora_adapter",
            "{\"lora_name\": \"x\", \"lora_path\": \""
                + adapters.resolve("../outside/delta")
                + "\"}"),
        400,
        "lora_path");
  }

  @Test
  void badRequestsGetOpenAiErrors() throws Exception {
    assertError(serve.post("/v1/completions", "{\"model\": \"alpha\", \"prompt\": "), 400, null);
    assertError(serve.post("/v1/completions", "[1, 2]"), 400, null);
    assertError(serve.post("/v1/completions", "{\"prompt\": \"x\"}"), 400, "model");
    assertError(
        serve.post("/v1/completions", "{\"model\": \"nope\", \"prompt\": \"x\"}"), 404, "model");
    assertError(
        serve.post(
            "/v1/completions", "{\"model\": \"alpha\", \"prompt\": \"x\", \"temperature\": -1}"),
        400,
        "temperature");
    assertError(
        serve.post(
            "/v1/completions",
            "{\"model\": \"alpha\", \"prompt\": \"x\", \"temperature\": \"hot\"}"),
        400,
        "temperature");
    assertError(
        serve.post("/v1/completions", "{\"model\": \"alpha\", \"prompt\": \"x\", \"top_p\": 0}"),
        400,
        "top_p");
    assertError(
        serve.post("/v1/completions", "{\"model\": \"alpha\", \"prompt\": \"x\", \"n\": 2}"),
        400,
        "n");
    assertError(
        serve.post(
            "/v1/completions",
            "{\"model\": \"alpha\", \"prompt\": \"x\", \"max_tokens\": 100000000}"),
        400,
        "max_tokens");
    assertError(
        serve.post(
            "/v1/completions",
            "{\"model\": \"alpha\", \"prompt\": \"" + "Once upon a time ".repeat(400) + "\"}"),
        413,
        "messages");
    assertError(
        serve.post("/v1/completions", "{\"model\": \"alpha\", \"prompt\": [1, 99999]}"),
        400,
        "prompt");
    assertError(
        serve.post(
            "/v1/chat/completions",
            "{\"model\": \"alpha\", \"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}"),
        400,
        "messages[0].role");
    assertError(
        serve.post(
            "/v1/chat/completions",
            "{\"model\": \"alpha\", \"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}]}"),
        400,
        "messages");
    byte[] big = new byte[(int) LoraServer.MAX_BODY_BYTES + 1024];
    java.util.Arrays.fill(big, (byte) ' ');
    HttpResponse<String> huge = serve.postBytes("/v1/completions", big);
    assertThat(huge.statusCode()).isEqualTo(413);
    assertThat(serve.get("/health").statusCode()).as("still serving").isEqualTo(200);
    ok(
        serve.post(
            "/v1/completions",
            "{\"model\": \"alpha\", \"prompt\": \"x\", \"max_tokens\": 2, \"n\": 1,"
                + " \"presence_penalty\": 0, \"user\": \"u\", \"echo\": false}"));
  }

  @Test
  void metricsCountRequestsAndTheCache() throws Exception {
    ok(
        serve.post(
            "/v1/completions", "{\"model\": \"beta\", \"prompt\": \"x\", \"max_tokens\": 3}"));
    String m = serve.get("/metrics").body();
    assertThat(m).contains("lora_requests_total{endpoint=\"completions\",status=\"200\"");
    assertThat(m).contains("lora_adapter_cache{stat=\"bytes\"");
    assertThat(m).contains("lora_time_to_first_token_seconds_bucket");
  }

  /** With --api-key, every /v1 route needs 'Authorization: Bearer KEY'; /health does not. */
  @Test
  void anApiKeyIsRequiredWhenSet() throws Exception {
    ServeOptions open = ServeClient.onStories(adapters, dir.resolve("spare"));
    ServeOptions locked =
        new ServeOptions(
            open.model(),
            open.adaptersDir(),
            null,
            java.util.Map.of(),
            open.roots(),
            open.cacheBytes(),
            open.maxBatch(),
            open.maxRunning(),
            open.maxQueue(),
            "s3cret",
            Precision.FP32);
    try (ServeClient keyed = ServeClient.start(locked)) {
      String body = "{\"model\": \"alpha\", \"prompt\": \"x\", \"max_tokens\": 2}";
      assertError(keyed.post("/v1/completions", body), 401, null);
      assertError(keyed.get("/v1/models"), 401, null);
      java.net.http.HttpRequest wrong =
          keyed.request("/v1/models").header("Authorization", "Bearer s3cre").GET().build();
      assertError(keyed.send(wrong), 401, null);
      java.net.http.HttpRequest right =
          keyed
              .request("/v1/completions")
              .header("Authorization", "Bearer s3cret")
              .header("Content-Type", "application/json")
              .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body))
              .build();
      assertThat(keyed.send(right).statusCode()).isEqualTo(200);
      assertThat(keyed.get("/health").statusCode()).isEqualTo(200);
    }
  }
}
