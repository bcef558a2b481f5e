package io.loraspark.pipeline.serve;

import static io.loraspark.pipeline.serve.ServeClient.JSON;
import static io.loraspark.pipeline.serve.ServeClient.STORIES;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.pipeline.testing.InProcessCli;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.model.precision.Precision;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
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
  static final String[] OPENERS = {
    "Once upon a time", "One day", "Lily and Tom", "The little dog", "Mom said", "There was a bird"
  };
  static final int TRAIN_ROWS = 48;
  static final int HELD_OUT = 12;

  @TempDir static Path dir;
  static ServeClient serve;
  static List<String> heldOutStories;
  static List<String> heldOutNumbers;

  @BeforeAll
  static void trainAndServe() throws Exception {
    Path adapters = Files.createDirectories(dir.resolve("adapters"));
    serve =
        ServeClient.start(
            new ServeOptions(
                STORIES,
                adapters,
                null,
                Map.of(),
                List.of(),
                64L << 20,
                256,
                32,
                64,
                null,
                Precision.FP32));

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
          serve.post(
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
    if (serve != null) {
      serve.close();
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
      pending.add(serve.sendAsync(serve.jsonPost("/v1/completions", body.toString())));
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
    InProcessCli.run(
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
        "--quiet");
  }

  /** The adapter {@code auto} chose for {@code prompt}. */
  static String routed(String prompt) throws Exception {
    ObjectNode body =
        JSON.createObjectNode()
            .put("model", "auto")
            .put("prompt", prompt)
            .put("max_tokens", 2)
            .put("temperature", 0);
    HttpResponse<String> r = serve.post("/v1/completions", body.toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    JsonNode answer = JSON.readTree(r.body());
    assertThat(answer.get("object").asText()).isEqualTo("text_completion");
    return answer.get("model").asText();
  }

  /** The prompts {@code auto} routed to the other adapter than {@code own}. */
  static List<String> misrouted(List<String> prompts, String own) throws Exception {
    List<String> wrong = new ArrayList<>();
    for (String p : prompts) {
      String chosen = routed(p);
      assertThat(chosen).isIn("stories", "numbers");
      if (!chosen.equals(own)) {
        wrong.add(p);
      }
    }
    return wrong;
  }

  @Test
  void autoIsListedAsAModel() throws Exception {
    assertThat(serve.modelIds()).contains("stories", "numbers", "auto");
  }

  @Test
  void heldOutPromptsAreRoutedToTheAdapterTrainedOnTheirKind() throws Exception {
    assertThat(heldOutStories).hasSizeGreaterThanOrEqualTo(10);
    assertThat(heldOutNumbers).hasSizeGreaterThanOrEqualTo(10);
    List<String> storiesWrong = misrouted(heldOutStories, "stories");
    int storiesRight = heldOutStories.size() - storiesWrong.size();
    List<String> numbersWrong = misrouted(heldOutNumbers, "numbers");
    int numbersRight = heldOutNumbers.size() - numbersWrong.size();
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
    HttpResponse<String> r = serve.post("/v1/chat/completions", chat.toString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    assertThat(JSON.readTree(r.body()).get("model").asText()).isIn("stories", "numbers");

    ObjectNode stream =
        JSON.createObjectNode()
            .put("model", "auto")
            .put("prompt", heldOutNumbers.get(1))
            .put("max_tokens", 3)
            .put("temperature", 0)
            .put("stream", true);
    HttpResponse<String> sse = serve.post("/v1/completions", stream.toString());
    assertThat(sse.statusCode()).isEqualTo(200);
    List<String> events = ServeClient.events(sse.body());
    assertThat(events.get(events.size() - 1)).isEqualTo("data: [DONE]");
    for (int i = 0; i < events.size() - 1; i++) {
      assertThat(JSON.readTree(events.get(i).substring("data: ".length())).get("model").asText())
          .isEqualTo(routed(heldOutNumbers.get(1)));
    }
  }
}
