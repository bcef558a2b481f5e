package io.loraspark.prep;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Model directories with a real chat template, built from the stories260K tokenizer. */
public final class ChatModels {

  /** Qwen2-Instruct's chat_template (ChatML with a default system prompt), verbatim. */
  public static final String QWEN2_TEMPLATE =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          + "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
          + "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
          + "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

  /** Id of {@code <|im_start|>} in the ChatML copy. */
  public static final int IM_START = 512;

  /** Id of {@code <|im_end|>} (the EOS) in the ChatML copy. */
  public static final int IM_END = 513;

  private ChatModels() {}

  /**
   * A copy of stories260K's tokenizer.json with ChatML's special tokens added (ids 512, 513), no
   * BOS post-processor and no SentencePiece dummy prefix (like byte-level ChatML tokenizers), plus
   * a tokenizer_config.json holding {@code template} with EOS {@code <|im_end|>}, as in Qwen2
   * models.
   */
  public static Path chatml(Path dir, String template) {
    ObjectMapper json = new ObjectMapper();
    try {
      Files.createDirectories(dir);
      ObjectNode tok =
          (ObjectNode) json.readTree(TestData.STORIES.resolve("tokenizer.json").toFile());
      ArrayNode added = (ArrayNode) tok.get("added_tokens");
      added.add(special(json, IM_START, "<|im_start|>"));
      added.add(special(json, IM_END, "<|im_end|>"));
      tok.putNull("post_processor");
      ObjectNode replace = tok.putObject("normalizer"); // no "▁" dummy prefix (legacy=false)
      replace.put("type", "Replace");
      replace.putObject("pattern").put("String", " ");
      replace.put("content", "\u2581");
      json.writeValue(dir.resolve("tokenizer.json").toFile(), tok);
      ObjectNode config = json.createObjectNode();
      config.put("tokenizer_class", "Qwen2Tokenizer");
      config.put("add_bos_token", false);
      config.putNull("bos_token");
      config.put("eos_token", "<|im_end|>");
      config.putNull("pad_token");
      config.put("model_max_length", 512);
      config.put("chat_template", template);
      json.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static ObjectNode special(ObjectMapper json, int id, String content) {
    return json.createObjectNode()
        .put("id", id)
        .put("content", content)
        .put("single_word", false)
        .put("lstrip", false)
        .put("rstrip", false)
        .put("normalized", false)
        .put("special", true);
  }
}
