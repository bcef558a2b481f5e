package io.loraspark.prep.tokenize;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * The token-to-id table of a {@code tokenizer.json}: the model vocabulary plus {@code added_tokens}
 * (which win on conflicts, as in Hugging Face tokenizers).
 *
 * <p>{@code model.vocab} is an object {@code {"token": id}} (BPE, WordPiece, WordLevel) or an array
 * of {@code ["piece", score]} pairs whose index is the id (Unigram).
 */
final class TokenizerVocab {

  private final Map<String, Integer> ids;
  private final int size;
  private final List<String> added;

  private TokenizerVocab(Map<String, Integer> ids, int size, List<String> added) {
    this.ids = ids;
    this.size = size;
    this.added = added;
  }

  /**
   * Reads the vocabulary of a parsed {@code tokenizer.json}.
   *
   * @param root the parsed file
   * @param file where it came from, named in error messages
   * @throws IllegalArgumentException if {@code model.vocab} or {@code added_tokens} is malformed
   */
  static TokenizerVocab of(JsonNode root, Path file) {
    JsonNode vocab = root.path("model").path("vocab");
    Map<String, Integer> ids = new HashMap<>();
    int max = -1;
    if (vocab.isObject()) {
      for (Map.Entry<String, JsonNode> e : vocab.properties()) {
        int id = requireId(e.getValue(), file, "model.vocab[\"" + e.getKey() + "\"]");
        ids.put(e.getKey(), id);
        max = Math.max(max, id);
      }
    } else if (vocab.isArray()) {
      for (int i = 0; i < vocab.size(); i++) {
        JsonNode piece = vocab.get(i);
        if (!piece.isArray() || piece.isEmpty() || !piece.get(0).isTextual()) {
          throw new IllegalArgumentException(
              file + ": model.vocab[" + i + "] must be a [\"piece\", score] pair but is " + piece);
        }
        ids.putIfAbsent(piece.get(0).asText(), i);
      }
      max = vocab.size() - 1;
    } else {
      throw new IllegalArgumentException(
          file
              + " has no model.vocab; expected a Hugging Face tokenizers file whose \"model\""
              + " holds a \"vocab\" object (BPE/WordPiece/WordLevel) or array (Unigram)");
    }
    checkUnknownToken(root.path("model"), ids, file);
    JsonNode added = root.path("added_tokens");
    if (!added.isMissingNode() && !added.isNull() && !added.isArray()) {
      throw new IllegalArgumentException(file + ": added_tokens must be an array but is " + added);
    }
    List<String> addedTokens = new ArrayList<>();
    for (JsonNode token : added) {
      JsonNode content = token.path("content");
      if (!content.isTextual()) {
        throw new IllegalArgumentException(
            file + ": each added_tokens entry needs a string \"content\" but got " + token);
      }
      int id = requireId(token.path("id"), file, "added_tokens \"" + content.asText() + "\" id");
      ids.put(content.asText(), id);
      addedTokens.add(content.asText());
      max = Math.max(max, id);
    }
    return new TokenizerVocab(Map.copyOf(ids), max + 1, List.copyOf(addedTokens));
  }

  /**
   * tokenizers loads a model whose unknown token is missing from its vocabulary and fails only when
   * a text needs it, which would fail a Spark task mid-job; refuse such a file at load.
   */
  private static void checkUnknownToken(JsonNode model, Map<String, Integer> vocab, Path file) {
    JsonNode unk = model.path("unk_token");
    if (unk.isTextual() && !vocab.containsKey(unk.textValue())) {
      throw new IllegalArgumentException(
          file + ": model.unk_token " + unk + " is not in model.vocab; name a token of the vocab");
    }
    JsonNode unkId = model.path("unk_id");
    if (unkId.isIntegralNumber() && (unkId.asLong() < 0 || unkId.asLong() >= vocab.size())) {
      throw new IllegalArgumentException(
          file + ": model.unk_id " + unkId + " is outside model.vocab [0, " + vocab.size() + ")");
    }
  }

  private static int requireId(JsonNode node, Path file, String what) {
    if (!node.canConvertToInt() || !node.isIntegralNumber() || node.intValue() < 0) {
      throw new IllegalArgumentException(
          file + ": " + what + " must be a non-negative integer id but is " + node);
    }
    return node.intValue();
  }

  /** The id of {@code token}, if the vocabulary or the added tokens hold it. */
  OptionalInt id(String token) {
    Integer id = ids.get(token);
    return id == null ? OptionalInt.empty() : OptionalInt.of(id);
  }

  /** The contents of {@code added_tokens}, in file order. */
  List<String> addedTokens() {
    return added;
  }

  /** One more than the largest id, i.e. the size including added tokens. */
  int size() {
    return size;
  }
}
