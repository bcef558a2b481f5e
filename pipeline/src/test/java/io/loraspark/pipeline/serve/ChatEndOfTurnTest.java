package io.loraspark.pipeline.serve;

import static io.loraspark.pipeline.serve.ServeClient.JSON;
import static io.loraspark.pipeline.serve.ServeClient.STORIES;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.decode.BatchDecoder;
import io.loraspark.train.decode.DecodeEngine;
import io.loraspark.train.decode.Request;
import io.loraspark.train.decode.SamplingParams;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.precision.Precision;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A chat template's end-of-turn token stops a chat completion though it is no EOS id. The model is
 * stories260K with a chat template that closes each assistant turn with a vocabulary piece, made a
 * special token in tokenizer.json (as {@code <|im_end|>} is in ChatML tokenizers). The piece is one
 * the model writes a few tokens into its greedy answer when only EOS stops it (the reference, from
 * the engine directly); served as a chat, the answer must end there.
 */
class ChatEndOfTurnTest {
  static final int MAX_TOKENS = 60;

  @TempDir Path dir;

  /** A chat template that ends each assistant turn with {@code end}. */
  static String template(String end) {
    return "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }}"
        + "{% if m['role'] == 'assistant' %}"
        + end
        + "{% endif %}\n{% endfor %}"
        + "{% if add_generation_prompt %}<assistant>{% endif %}";
  }

  /**
   * stories260K with a chat template that ends turns with vocabulary piece {@code end}, made a
   * special added token when {@code special} (as {@code <|im_end|>} is in ChatML tokenizers).
   */
  Path model(String name, String end, boolean special) throws Exception {
    Path m = dir.resolve(name);
    Files.createDirectories(m);
    for (String f : List.of("config.json", "generation_config.json", "model.safetensors")) {
      Files.copy(STORIES.resolve(f), m.resolve(f));
    }
    ObjectNode tok = (ObjectNode) JSON.readTree(STORIES.resolve("tokenizer.json").toFile());
    if (special) {
      ((ArrayNode) tok.get("added_tokens"))
          .addObject()
          .put("id", tok.get("model").get("vocab").get(end).asInt())
          .put("content", end)
          .put("single_word", false)
          .put("lstrip", false)
          .put("rstrip", false)
          .put("normalized", false)
          .put("special", true);
    }
    Files.writeString(m.resolve("tokenizer.json"), tok.toString());
    ObjectNode config =
        (ObjectNode) JSON.readTree(STORIES.resolve("tokenizer_config.json").toFile());
    config.put("chat_template", template(end));
    Files.writeString(m.resolve("tokenizer_config.json"), config.toString());
    return m;
  }

  @Test
  void theTemplatesEndOfTurnTokenStopsAChatCompletion() throws Exception {
    List<ApiRequest.Message> messages = List.of(new ApiRequest.Message("user", "Tell me a story"));
    // what the model writes after the chat prompt, with nothing but EOS to stop it
    Path plainModel = model("stories-plain", ".", false);
    int[] promptIds;
    int[] free;
    String eot;
    try (TextTokenizer tok = TextTokenizer.load(plainModel)) {
      ChatPrompt chat = new ChatPrompt(tok, plainModel.toString());
      assertThat(chat.endOfTurnIds()).as("'.' is no special token here").isEmpty();
      promptIds = chat.ids(messages);
      free =
          BatchDecoder.generate(
                  new DecodeEngine(CheckpointLoader.load(plainModel)),
                  new Request(
                      promptIds, null, SamplingParams.greedy(MAX_TOKENS, Set.of(tok.eosId()))))
              .tokens();
      eot = endOfTurnPiece(tok, free, tok.decode(promptIds, false));
    }
    // the same model whose template ends turns with that piece, a special token
    Path m = model("stories-chat", eot, true);
    int[] reference;
    String wantText;
    try (TextTokenizer tok = TextTokenizer.load(m)) {
      int id = tok.encode(eot, false)[0];
      assertThat(Arrays.stream(tok.eosIds()).boxed().toList()).doesNotContain(id);
      ChatPrompt chat = new ChatPrompt(tok, m.toString());
      assertThat(chat.endOfTurnIds()).as("found by rendering the template").containsExactly(id);
      assertThat(chat.ids(messages)).as("the prompt's ids are unchanged").isEqualTo(promptIds);
      int k = indexOf(free, id);
      reference = Arrays.copyOf(free, k + 1);
      wantText = tok.decode(Arrays.copyOf(free, k), true);
    }
    try (ServeClient serve =
        ServeClient.start(
            new ServeOptions(
                m, null, null, Map.of(), List.of(), 1 << 20, 64, 4, 4, null, Precision.FP32))) {
      String chatBody =
          "{\"model\": \"stories-chat\", \"messages\": [{\"role\": \"user\", \"content\":"
              + " \"Tell me a story\"}], \"max_tokens\": "
              + MAX_TOKENS
              + ", \"temperature\": 0";
      JsonNode plain = ok(serve.post("/v1/chat/completions", chatBody + "}"));
      JsonNode choice = plain.get("choices").get(0);
      assertThat(choice.get("finish_reason").asText()).isEqualTo("stop");
      assertThat(choice.get("message").get("content").asText()).isEqualTo(wantText);
      assertThat(plain.get("usage").get("completion_tokens").asInt())
          .as("generation ended at the end-of-turn token")
          .isEqualTo(reference.length);
      assertThat(plain.get("usage").get("prompt_tokens").asInt()).isEqualTo(promptIds.length);

      HttpResponse<String> sse =
          serve.post("/v1/chat/completions", chatBody + ", \"stream\": true}");
      StringBuilder streamed = new StringBuilder();
      String finish = null;
      for (String e : ServeClient.events(sse.body())) {
        if (e.equals("data: [DONE]")) {
          continue;
        }
        JsonNode c = JSON.readTree(e.substring("data: ".length())).get("choices").get(0);
        if (c.get("delta").has("content")) {
          streamed.append(c.get("delta").get("content").asText());
        }
        finish = c.get("finish_reason").isNull() ? finish : c.get("finish_reason").asText();
      }
      assertThat(streamed.toString()).isEqualTo(wantText);
      assertThat(finish).isEqualTo("stop");

      // vLLM's ignore_eos: neither the end of the turn nor EOS ends it, max_tokens does
      JsonNode ignoring =
          ok(serve.post("/v1/chat/completions", chatBody + ", \"ignore_eos\": true}"));
      assertThat(ignoring.get("usage").get("completion_tokens").asInt()).isEqualTo(MAX_TOKENS);
      assertThat(ignoring.get("choices").get(0).get("finish_reason").asText()).isEqualTo("length");

      // the end of a chat turn is no stop for a plain completion of the same ids
      JsonNode completion =
          ok(
              serve.post(
                  "/v1/completions",
                  "{\"model\": \"stories-chat\", \"prompt\": "
                      + Arrays.toString(promptIds)
                      + ", \"max_tokens\": "
                      + (reference.length + 4)
                      + ", \"temperature\": 0}"));
      assertThat(completion.get("usage").get("completion_tokens").asInt())
          .isGreaterThan(reference.length);
    }
  }

  static JsonNode ok(HttpResponse<String> r) throws Exception {
    assertThat(r.statusCode()).as("status, body: %s", r.body()).isEqualTo(200);
    return JSON.readTree(r.body());
  }

  /**
   * A merged piece the free-running model writes a few tokens in (so there is text before it) that
   * the prompt does not contain (so making it special leaves the prompt's ids alone).
   */
  static String endOfTurnPiece(TextTokenizer tok, int[] generated, String promptText)
      throws Exception {
    JsonNode vocab =
        JSON.readTree(STORIES.resolve("tokenizer.json").toFile()).get("model").get("vocab");
    for (int i = 3; i < generated.length; i++) {
      String piece = null;
      for (var e : (Iterable<Map.Entry<String, JsonNode>>) vocab::fields) {
        if (e.getValue().asInt() == generated[i]) {
          piece = e.getKey();
        }
      }
      String text = tok.decode(new int[] {generated[i]}, true).strip();
      if (generated[i] >= 259
          && text.length() >= 2
          && !promptText.contains(text)
          && indexOf(generated, generated[i]) == i) {
        return piece;
      }
    }
    throw new AssertionError("no usable piece in " + Arrays.toString(generated));
  }

  static int indexOf(int[] ids, int id) {
    for (int i = 0; i < ids.length; i++) {
      if (ids[i] == id) {
        return i;
      }
    }
    return -1;
  }
}
