package io.loraspark.pipeline.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.pipeline.cli.Main;
import io.loraspark.prep.tokenize.TextTokenizer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code model: "auto"} on two adapters trained here with the project's own {@code train} on
 * clearly different data: "stories" on text the base model samples itself, "numbers" on lines of
 * digit arithmetic. Held-out prompts of each kind must be routed to their own adapter (the answer's
 * {@code model} names the adapter chosen) at least 90% of the time.
 */
class RoutingTest {
  static final Path STORIES = Path.of("../models/stories260K");
  static final ObjectMapper JSON = new ObjectMapper();
  static final HttpClient HTTP =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(5))
          .build();
  static final String[] OPENERS = {
    "Once upon a time", "One day", "Lily and Tom", "The little dog", "Mom said", "There was a bird"
  };
  static final int TRAIN_ROWS = 48;
  static final int HELD_OUT = 12;

  @TempDir static Path dir;
  static LoraServer server;
  static String url;
  static List<String> heldOutStories;
  static List<String> heldOutNumbers;

  @BeforeAll
  static void trainAndServe() throws Exception {
    Path adapters = Files.createDirectories(dir.resolve("adapters"));
    server =
        new ServeOptions(STORIES, adapters, null, Map.of(), List.of(), 64L << 20, 256, 32, 64, null)
            .build();
    url = "http://127.0.0.1:" + server.start("127.0.0.1", 0);

    // the base model's own stories (sampled by this server, before it has any adapter)
    List<String> stories = sampleStories(TRAIN_ROWS + HELD_OUT);
    heldOutStories = stories.subList(TRAIN_ROWS, stories.size());
    List<String> numbers = new ArrayList<>();
    Random rnd = new Random(7);
    for (int i = 0; i < TRAIN_ROWS + HELD_OUT; i++) {
      numbers.add(arithmetic(rnd, 8));
    }
    heldOutNumbers = numbers.subList(TRAIN_ROWS, numbers.size());

    train(tokenized(stories.subList(0, TRAIN_ROWS), "stories.jsonl"), adapters.resolve("stories"));
    train(tokenized(numbers.subList(0, TRAIN_ROWS), "numbers.jsonl"), adapters.resolve("numbers"));
    for (String name : List.of("stories", "numbers")) {
      HttpResponse<String> r =
          post(
              "/v1/load_lora_adapter",
              JSON.createObjectNode()
                  .put("lora_name", name)
                  .put("lora_path", adapters.resolve(name).toString())
                  .toString());
      assertThat(r.statusCode()).as("load %s: %s", name, r.body()).isEqualTo(200);
    }
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  /** Lines like "37 + 5 = 42. 8 + 19 = 27." with the sums right. */
  static String arithmetic(Random rnd, int terms) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < terms; i++) {
      int a = rnd.nextInt(50);
      int b = rnd.nextInt(50);
      sb.append(a).append(" + ").append(b).append(" = ").append(a + b).append(". ");
    }
    return sb.toString().trim();
  }

  /** {@code n} samples of the base model (temperature 1, a seed each), opener included. */
  static List<String> sampleStories(int n) throws Exception {
    List<CompletableFuture<HttpResponse<String>>> pending = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      ObjectNode body =
          JSON.createObjectNode()
              .put("model", "stories260K")
              .put("prompt", OPENERS[i % OPENERS.length])
              .put("max_tokens", 56)
              .put("temperature", 1.0)
              .put("seed", 1000 + i);
      pending.add(HTTP.sendAsync(request("/v1/completions", body.toString()), ofString()));
    }
    List<String> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      HttpResponse<String> r = pending.get(i).get();
      assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
      String text = JSON.readTree(r.body()).get("choices").get(0).get("text").asText();
      out.add(OPENERS[i % OPENERS.length] + text);
    }
    return out;
  }

  /** Token-row JSONL of {@code texts} (BOS first, every token scored). */
  static Path tokenized(List<String> texts, String name) throws Exception {
    StringBuilder sb = new StringBuilder();
    try (TextTokenizer tok = TextTokenizer.load(STORIES)) {
      for (String t : texts) {
        int[] ids = tok.encode(t, true);
        sb.append(JSON.createObjectNode().putPOJO("input_ids", ids)).append('\n');
      }
    }
    return Files.writeString(dir.resolve(name), sb);
  }

  static void train(Path data, Path out) {
    ByteArrayOutputStream stdout = new ByteArrayOutputStream();
    ByteArrayOutputStream stderr = new ByteArrayOutputStream();
    int code =
        Main.execute(
            new String[] {
              "train",
              "--model",
              STORIES.toString(),
              "--data",
              data.toString(),
              "--output",
              out.toString(),
              "--rank",
              "8",
              "--lr",
              "5e-3",
              "--lr-ratio",
              "4",
              "--steps",
              "40",
              "--batch-size",
              "8",
              "--seed",
              "3",
              "--quiet"
            },
            new PrintStream(stdout, true, StandardCharsets.UTF_8),
            new PrintStream(stderr, true, StandardCharsets.UTF_8));
    assertThat(code)
        .as("train %s: %s", out.getFileName(), stderr.toString(StandardCharsets.UTF_8))
        .isZero();
  }

  static HttpRequest request(String path, String body) {
    return HttpRequest.newBuilder(URI.create(url + path))
        .timeout(Duration.ofSeconds(60))
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body))
        .build();
  }

  static HttpResponse.BodyHandler<String> ofString() {
    return HttpResponse.BodyHandlers.ofString();
  }

  static HttpResponse<String> post(String path, String body) throws Exception {
    return HTTP.send(request(path, body), ofString());
  }

  /** The adapter {@code auto} chose for {@code prompt}. */
  static String routed(String prompt) throws Exception {
    ObjectNode body =
        JSON.createObjectNode()
            .put("model", "auto")
            .put("prompt", prompt)
            .put("max_tokens", 2)
            .put("temperature", 0);
    HttpResponse<String> r = post("/v1/completions", body.toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    JsonNode answer = JSON.readTree(r.body());
    assertThat(answer.get("object").asText()).isEqualTo("text_completion");
    return answer.get("model").asText();
  }

  @Test
  void autoIsListedAsAModel() throws Exception {
    HttpResponse<String> r =
        HTTP.send(HttpRequest.newBuilder(URI.create(url + "/v1/models")).build(), ofString());
    List<String> ids = new ArrayList<>();
    JSON.readTree(r.body()).get("data").forEach(m -> ids.add(m.get("id").asText()));
    assertThat(ids).contains("stories", "numbers", "auto");
  }

  @Test
  void heldOutPromptsAreRoutedToTheAdapterTrainedOnTheirKind() throws Exception {
    assertThat(heldOutStories).hasSizeGreaterThanOrEqualTo(10);
    assertThat(heldOutNumbers).hasSizeGreaterThanOrEqualTo(10);
    int storiesRight = 0;
    List<String> storiesWrong = new ArrayList<>();
    for (String p : heldOutStories) {
      String chosen = routed(p);
      assertThat(chosen).isIn("stories", "numbers");
      if (chosen.equals("stories")) {
        storiesRight++;
      } else {
        storiesWrong.add(p);
      }
    }
    int numbersRight = 0;
    List<String> numbersWrong = new ArrayList<>();
    for (String p : heldOutNumbers) {
      String chosen = routed(p);
      assertThat(chosen).isIn("stories", "numbers");
      if (chosen.equals("numbers")) {
        numbersRight++;
      } else {
        numbersWrong.add(p);
      }
    }
    assertThat(storiesRight)
        .as("stories prompts routed to 'stories'; misrouted: %s", storiesWrong)
        .isGreaterThanOrEqualTo((int) Math.ceil(0.9 * heldOutStories.size()));
    assertThat(numbersRight)
        .as("arithmetic prompts routed to 'numbers'; misrouted: %s", numbersWrong)
        .isGreaterThanOrEqualTo((int) Math.ceil(0.9 * heldOutNumbers.size()));
  }

  @Test
  void routingWorksForChatAndStreamsNameTheChosenAdapter() throws Exception {
    ObjectNode chat = JSON.createObjectNode().put("model", "auto").put("max_tokens", 2);
    chat.putArray("messages").addObject().put("role", "user").put("content", heldOutNumbers.get(0));
    HttpResponse<String> r = post("/v1/chat/completions", chat.toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    assertThat(JSON.readTree(r.body()).get("model").asText()).isIn("stories", "numbers");

    ObjectNode stream =
        JSON.createObjectNode()
            .put("model", "auto")
            .put("prompt", heldOutNumbers.get(1))
            .put("max_tokens", 3)
            .put("temperature", 0)
            .put("stream", true);
    HttpResponse<String> sse = post("/v1/completions", stream.toString());
    assertThat(sse.statusCode()).isEqualTo(200);
    String[] events = sse.body().split("\n\n");
    assertThat(events[events.length - 1]).isEqualTo("data: [DONE]");
    for (int i = 0; i < events.length - 1; i++) {
      assertThat(JSON.readTree(events[i].substring("data: ".length())).get("model").asText())
          .isEqualTo(routed(heldOutNumbers.get(1)));
    }
  }
}
