package io.loraspark.prep.tokenize;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * Builds the {@code tokenizer.json} that transformers' {@code GPT2TokenizerFast} derives from the
 * slow GPT-2 files {@code vocab.json} + {@code merges.txt}: a BPE model (no unk token, no byte
 * fallback), a ByteLevel pre-tokenizer ({@code add_prefix_space=false}, {@code trim_offsets}), a
 * ByteLevel decoder and a ByteLevel post-processor (which adds no tokens).
 *
 * <p>No added tokens are registered, so text such as {@code <|endoftext|>} is encoded literally, as
 * the GPT-2 reference vectors expect.
 */
public final class ByteLevelBpeJson {

  private static final String VERSION_HEADER = "#version";

  private ByteLevelBpeJson() {}

  /**
   * Returns the UTF-8 bytes of the equivalent {@code tokenizer.json}. The output is deterministic:
   * vocabulary and merges keep their file order.
   *
   * @throws IllegalArgumentException naming the file if {@code vocab.json} is not an object of
   *     unique non-negative integer ids, or a line of {@code merges.txt} is not two vocabulary
   *     tokens separated by one space whose concatenation is also in the vocabulary
   */
  public static byte[] build(Path vocabJson, Path mergesTxt) {
    JsonNode vocab = JsonFiles.readObject(vocabJson, "a GPT-2 vocab.json {\"token\": id, ...}");
    ObjectNode vocabOut = validateVocab(vocab, vocabJson);
    byte[] mergeBytes = JsonFiles.readBytes(mergesTxt, "a GPT-2 merges.txt (\"a b\" per line)");
    ArrayNode merges = parseMerges(utf8(mergeBytes, mergesTxt), mergesTxt, vocabOut);

    ObjectNode model = JsonFiles.MAPPER.createObjectNode();
    model.put("type", "BPE");
    model.putNull("dropout");
    model.putNull("unk_token");
    model.put("continuing_subword_prefix", "");
    model.put("end_of_word_suffix", "");
    model.put("fuse_unk", false);
    model.put("byte_fallback", false);
    model.set("vocab", vocabOut);
    model.set("merges", merges);

    ObjectNode root = JsonFiles.MAPPER.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    root.putArray("added_tokens");
    root.putNull("normalizer");
    root.set("pre_tokenizer", byteLevel(false, true));
    root.set("post_processor", byteLevel(true, false));
    root.set("decoder", byteLevel(true, true));
    root.set("model", model);
    try {
      return JsonFiles.MAPPER.writeValueAsBytes(root);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialise the generated tokenizer.json", e);
    }
  }

  private static ObjectNode byteLevel(boolean addPrefixSpace, boolean trimOffsets) {
    ObjectNode node = JsonFiles.MAPPER.createObjectNode();
    node.put("type", "ByteLevel");
    node.put("add_prefix_space", addPrefixSpace);
    node.put("trim_offsets", trimOffsets);
    node.put("use_regex", true);
    return node;
  }

  private static ObjectNode validateVocab(JsonNode vocab, Path file) {
    ObjectNode out = JsonFiles.MAPPER.createObjectNode();
    Set<Integer> seen = new HashSet<>();
    for (Map.Entry<String, JsonNode> e : vocab.properties()) {
      JsonNode id = e.getValue();
      if (!id.isIntegralNumber() || !id.canConvertToInt() || id.intValue() < 0) {
        throw new IllegalArgumentException(
            file
                + ": \""
                + e.getKey()
                + "\" must map to a non-negative integer id but maps to "
                + id);
      }
      if (!seen.add(id.intValue())) {
        throw new IllegalArgumentException(
            file
                + ": id "
                + id
                + " is used twice (last by \""
                + e.getKey()
                + "\"); ids must be unique");
      }
      out.put(e.getKey(), id.intValue());
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException(
          file + " is an empty object; expected {\"token\": id, ...}");
    }
    return out;
  }

  private static ArrayNode parseMerges(String text, Path file, ObjectNode vocab) {
    ArrayNode merges = JsonFiles.MAPPER.createArrayNode();
    String[] lines = text.split("\r?\n", -1);
    for (int i = 0; i < lines.length; i++) {
      String line = lines[i];
      if (line.isEmpty() || (i == 0 && line.startsWith(VERSION_HEADER))) {
        continue;
      }
      String[] parts = line.split(" ", -1);
      if (parts.length != 2 || parts[0].isEmpty() || parts[1].isEmpty()) {
        throw new IllegalArgumentException(
            String.format(
                "%s line %d: expected two tokens separated by one space (\"a b\") but got \"%s\"",
                file, i + 1, JsonFiles.oneLine(line)));
      }
      for (String token : new String[] {parts[0], parts[1], parts[0] + parts[1]}) {
        if (!vocab.has(token)) {
          throw new IllegalArgumentException(
              String.format(
                  "%s line %d: token \"%s\" of merge \"%s\" is not in vocab.json",
                  file, i + 1, token, line));
        }
      }
      merges.add(line);
    }
    return merges;
  }

  private static String utf8(byte[] bytes, Path file) {
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes))
          .toString();
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException(file + " is not valid UTF-8 text (" + e + ")", e);
    }
  }
}
