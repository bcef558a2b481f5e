package io.loraspark.prep.tokenize;

import ai.djl.engine.EngineException;
import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;

/**
 * A Hugging Face tokenizer plus the special-token conventions of its model directory. Thread-safe
 * encode/decode.
 *
 * <p>Encoding runs DJL's bindings to the native (Rust) Hugging Face tokenizers with truncation and
 * padding disabled, so ids equal those of {@code tokenizer(text)} in transformers. DJL is put in
 * offline mode ({@code ai.djl.offline=true}) unless the caller set {@code ai.djl.offline} or {@code
 * DJL_OFFLINE}: the native library is then extracted from the DJL jar into the DJL cache directory
 * ({@code ~/.djl.ai}, or {@code DJL_CACHE_DIR}) and nothing is fetched over the network.
 *
 * <p>Special tokens: when {@code addSpecialTokens} is set, the {@code tokenizer.json}
 * post-processor runs first; then BOS is prepended if {@code add_bos_token} asks for it and the
 * post-processor did not add it, and EOS appended likewise for {@code add_eos_token}. {@code
 * add_bos_token} defaults to true for {@code LlamaTokenizer}-class tokenizers, as in transformers,
 * and to false otherwise. A sequence never starts with two BOS tokens: if the text itself begins
 * with the BOS token (e.g. a rendered chat template), no second one is added.
 *
 * <p>{@link #close()} must not race with encode/decode; after it they throw {@link
 * IllegalStateException}.
 */
public final class TextTokenizer implements AutoCloseable {

  /** File name of the Hugging Face tokenizers file inside a model directory. */
  public static final String TOKENIZER_JSON = "tokenizer.json";

  private static final String OFFLINE_PROPERTY = "ai.djl.offline";
  private static final String OFFLINE_ENV = "DJL_OFFLINE";
  private static final Pattern LLAMA_CLASS = Pattern.compile("(Code)?LlamaTokenizer(Fast)?");
  private static final String PROBE_TEXT = "a";

  static {
    if (System.getProperty(OFFLINE_PROPERTY) == null && System.getenv(OFFLINE_ENV) == null) {
      System.setProperty(OFFLINE_PROPERTY, "true");
    }
  }

  private final HuggingFaceTokenizer tokenizer;
  private final String source;
  private final String contentHash;
  private final int vocabSize;
  private final int bosId;
  private final int eosId;
  private final int padId;
  private final int[] eosIds;
  private final int[] skippedIds;
  private final int prependId;
  private final int appendId;
  private final boolean addsBos;
  private final Optional<String> chatTemplate;
  private final OptionalInt modelMaxLength;
  private final AtomicBoolean closed = new AtomicBoolean();

  private TextTokenizer(
      byte[] json, Path source, SpecialTokenConfig config, String fallbackSpecial) {
    JsonNode root = JsonFiles.parseObject(json, source);
    TokenizerVocab vocab = TokenizerVocab.of(root, source);
    this.source = source.toString();
    this.contentHash = sha256(json);
    this.vocabSize = vocab.size();
    PostProcessorCheck.check(root.path("post_processor"), source);
    this.tokenizer = createNative(json, source);
    try {
      checkAddedTokenIds(vocab.addedTokens(), source);
      Path configFile = source.resolveSibling(SpecialTokenConfig.TOKENIZER_CONFIG);
      Path generationFile = source.resolveSibling(SpecialTokenConfig.GENERATION_CONFIG);
      OptionalInt fallback =
          fallbackSpecial == null ? OptionalInt.empty() : vocab.id(fallbackSpecial);
      OptionalInt tokBos = lookup(vocab, config.bosToken(), "bos_token", configFile);
      OptionalInt tokEos = lookup(vocab, config.eosToken(), "eos_token", configFile);
      OptionalInt tokPad = lookup(vocab, config.padToken(), "pad_token", configFile);
      this.bosId = firstOf(tokBos, config.genBosId(), fallback);
      OptionalInt genEos =
          config.genEosIds().isEmpty()
              ? OptionalInt.empty()
              : OptionalInt.of(config.genEosIds().get(0));
      this.eosId = firstOf(genEos, tokEos, fallback);
      this.padId = firstOf(tokPad, config.genPadId(), OptionalInt.empty());
      this.eosIds = eosIds(config.genEosIds(), eosId);
      for (int id : concat(new int[] {bosId, padId}, eosIds)) {
        checkRange(id, generationFile);
      }
      this.skippedIds =
          Arrays.stream(concat(new int[] {bosId, padId}, eosIds)).distinct().toArray();
      boolean llama =
          config.tokenizerClass().map(c -> LLAMA_CLASS.matcher(c).matches()).orElse(false);
      int[][] added = probePostProcessor();
      boolean wantBos = config.addBosToken().orElse(llama);
      boolean wantEos = config.addEosToken().orElse(false);
      this.prependId = wantBos && !contains(added[0], bosId) ? bosId : -1;
      this.addsBos = prependId >= 0 || contains(added[0], bosId);
      int appendEos = tokEos.isPresent() ? tokEos.getAsInt() : eosId;
      this.appendId = wantEos && !contains(added[1], appendEos) ? appendEos : -1;
      this.chatTemplate = config.chatTemplate();
      this.modelMaxLength = config.modelMaxLength();
    } catch (RuntimeException e) {
      tokenizer.close();
      throw e;
    }
  }

  /**
   * Loads {@code dir/tokenizer.json} (required) and, when present, {@code
   * dir/tokenizer_config.json} (add_bos_token, add_eos_token, bos_token, eos_token, pad_token,
   * chat_template, model_max_length), {@code dir/chat_template.jinja} (used when the config has no
   * chat_template) and {@code dir/generation_config.json} (bos_token_id, eos_token_id which may be
   * an int or a list, pad_token_id).
   *
   * @throws IllegalArgumentException naming the file if {@code dir} is not a directory, {@code
   *     tokenizer.json} is missing or not a valid tokenizers file, a config file is malformed, or a
   *     configured special token is not in the vocabulary
   */
  public static TextTokenizer load(Path modelDir) {
    if (!Files.isDirectory(modelDir)) {
      throw new IllegalArgumentException(
          modelDir + " is not a directory; expected a model directory holding " + TOKENIZER_JSON);
    }
    Path file = modelDir.resolve(TOKENIZER_JSON);
    byte[] json =
        JsonFiles.readBytes(
            file,
            "the Hugging Face tokenizers file (for GPT-2 style vocab.json + merges.txt use"
                + " fromVocabAndMerges)");
    return new TextTokenizer(json, file, SpecialTokenConfig.read(modelDir), null);
  }

  /**
   * Builds a GPT-2 style byte-level BPE tokenizer from {@code vocab.json} + {@code merges.txt},
   * generating the {@code tokenizer.json} transformers' {@code GPT2TokenizerFast} would (see {@link
   * ByteLevelBpeJson}). {@code <|endoftext|>}, when in the vocabulary, is BOS and EOS; it is never
   * added by {@link #encode} and a literal {@code <|endoftext|>} in text is encoded as plain text.
   * Any {@code tokenizer_config.json} or {@code generation_config.json} next to {@code vocab.json}
   * is ignored.
   *
   * @throws IllegalArgumentException naming the file if either file is missing or malformed
   */
  public static TextTokenizer fromVocabAndMerges(Path vocabJson, Path mergesTxt) {
    byte[] json = ByteLevelBpeJson.build(vocabJson, mergesTxt);
    return new TextTokenizer(json, vocabJson, SpecialTokenConfig.none(), "<|endoftext|>");
  }

  /**
   * Token ids of {@code text}. With {@code addSpecialTokens}, BOS/EOS are added as the model's
   * tokenizer would (see the class comment); without it, only the text's own tokens are returned.
   *
   * @throws IllegalStateException if this tokenizer is closed
   */
  public int[] encode(String text, boolean addSpecialTokens) {
    Objects.requireNonNull(text, "text");
    long[] raw = nativeEncode(text, addSpecialTokens);
    int prepend = addSpecialTokens ? prependId : -1;
    int append = addSpecialTokens ? appendId : -1;
    int start = prepend >= 0 ? 1 : 0;
    int[] ids = new int[start + raw.length + (append >= 0 ? 1 : 0)];
    if (start == 1) {
      ids[0] = prepend;
    }
    for (int i = 0; i < raw.length; i++) {
      ids[start + i] = Math.toIntExact(raw[i]);
    }
    if (append >= 0) {
      ids[ids.length - 1] = append;
    }
    boolean doubleBos = addSpecialTokens && addsBos && ids.length >= 2;
    if (doubleBos && ids[0] == bosId && ids[1] == bosId) {
      return Arrays.copyOfRange(ids, 1, ids.length);
    }
    return ids;
  }

  /**
   * Like {@link #encode}, plus where each token comes from: {@link TokenSpans} gives each token's
   * code-point range in {@code text}, or -1 for tokens the tokenizer added (BOS, EOS).
   *
   * @throws IllegalStateException if this tokenizer is closed
   */
  public TokenSpans encodeWithSpans(String text, boolean addSpecialTokens) {
    Objects.requireNonNull(text, "text");
    Encoding encoding = nativeEncoding(text, addSpecialTokens);
    return addSpecialTokens
        ? TokenSpans.of(encoding, prependId, appendId, addsBos ? bosId : -1)
        : TokenSpans.of(encoding, -1, -1, -1);
  }

  /**
   * The text of {@code ids}. With {@code skipSpecialTokens}, BOS, EOS (all generation EOS ids), PAD
   * and the tokenizer's own special added tokens are left out.
   *
   * @throws IllegalArgumentException if an id is outside {@code [0, vocabSize())}
   * @throws IllegalStateException if this tokenizer is closed
   */
  public String decode(int[] ids, boolean skipSpecialTokens) {
    List<Long> kept = new ArrayList<>(ids.length);
    for (int id : ids) {
      if (id < 0 || id >= vocabSize) {
        throw new IllegalArgumentException(
            "token id " + id + " is outside [0, " + vocabSize + ") of " + source);
      }
      if (!skipSpecialTokens || !contains(skippedIds, id)) {
        kept.add((long) id);
      }
    }
    ensureOpen();
    long[] longs = kept.stream().mapToLong(Long::longValue).toArray();
    try {
      return tokenizer.decode(longs, skipSpecialTokens);
    } catch (RuntimeException e) {
      throw new IllegalStateException(
          "tokenizers failed to decode with " + source + ": " + JsonFiles.oneLine(e.getMessage()),
          e);
    }
  }

  /** BOS id: tokenizer_config's bos_token, else generation_config's bos_token_id; -1 if none. */
  public int bosId() {
    return bosId;
  }

  /**
   * EOS id: generation_config's (first) eos_token_id, else tokenizer_config's eos_token; -1 if
   * none.
   */
  public int eosId() {
    return eosId;
  }

  /**
   * Every id that ends generation: all of generation_config's eos_token_id, else {@link #eosId}.
   */
  public int[] eosIds() {
    return eosIds.clone();
  }

  /** PAD id: tokenizer_config's pad_token, else generation_config's pad_token_id; -1 if none. */
  public int padId() {
    return padId;
  }

  /** Number of ids, added tokens included: one more than the largest id. */
  public int vocabSize() {
    return vocabSize;
  }

  /** tokenizer_config's chat_template (or chat_template.jinja), if any. */
  public Optional<String> chatTemplate() {
    return chatTemplate;
  }

  /** tokenizer_config's model_max_length, if set to a value that fits an int. */
  public OptionalInt modelMaxLength() {
    return modelMaxLength;
  }

  /** Lower-case sha256 hex of the tokenizer.json bytes (generated ones for vocab + merges). */
  public String contentHash() {
    return contentHash;
  }

  /** Frees the native tokenizer. Idempotent. */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      tokenizer.close();
    }
  }

  @Override
  public String toString() {
    return "TextTokenizer[" + source + ", vocab=" + vocabSize + ", sha256=" + contentHash + "]";
  }

  private long[] nativeEncode(String text, boolean addSpecialTokens) {
    return nativeEncoding(text, addSpecialTokens).getIds();
  }

  private Encoding nativeEncoding(String text, boolean addSpecialTokens) {
    ensureOpen();
    try {
      return tokenizer.encode(text, addSpecialTokens, false);
    } catch (RuntimeException e) {
      throw new IllegalStateException(
          "tokenizers failed to encode with " + source + ": " + JsonFiles.oneLine(e.getMessage()),
          e);
    }
  }

  private void ensureOpen() {
    if (closed.get()) {
      throw new IllegalStateException("TextTokenizer for " + source + " is closed");
    }
  }

  /**
   * tokenizers gives an added token whose content is not in {@code model.vocab} a new id past the
   * vocabulary, whatever its declared id; such ids would reach the shards and the embedding lookup.
   */
  private void checkAddedTokenIds(List<String> added, Path source) {
    if (added.isEmpty()) {
      return;
    }
    for (long id : nativeEncode(String.join(" ", added), false)) {
      if (id < 0 || id >= vocabSize) {
        throw new IllegalArgumentException(
            String.format(
                "%s: tokenizers assigns id %d, outside the %d ids that model.vocab and added_tokens"
                    + " declare; is an added_tokens entry's content missing from model.vocab?",
                source, id, vocabSize));
      }
    }
  }

  /** Ids the post-processor adds before ([0]) and after ([1]) the text's own ids. */
  private int[][] probePostProcessor() {
    long[] plain = nativeEncode(PROBE_TEXT, false);
    long[] full = nativeEncode(PROBE_TEXT, true);
    for (int at = 0; at + plain.length <= full.length; at++) {
      if (Arrays.equals(full, at, at + plain.length, plain, 0, plain.length)) {
        return new int[][] {
          toInts(Arrays.copyOfRange(full, 0, at)),
          toInts(Arrays.copyOfRange(full, at + plain.length, full.length))
        };
      }
    }
    return new int[][] {toInts(full), toInts(full)};
  }

  private static HuggingFaceTokenizer createNative(byte[] json, Path source) {
    Map<String, String> options = Map.of("truncation", "false", "padding", "false");
    try {
      return HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(json), options);
    } catch (EngineException e) {
      throw new IllegalStateException(
          "DJL's native tokenizers library failed while loading " + source + ": " + e, e);
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException(
          source
              + " is not a valid Hugging Face tokenizers file (tokenizers rejected it: "
              + JsonFiles.oneLine(e.getMessage())
              + ")",
          e);
    }
  }

  private static OptionalInt lookup(
      TokenizerVocab vocab, Optional<String> token, String key, Path file) {
    if (token.isEmpty()) {
      return OptionalInt.empty();
    }
    OptionalInt id = vocab.id(token.get());
    if (id.isEmpty()) {
      throw new IllegalArgumentException(
          file + ": " + key + " \"" + token.get() + "\" is not a token of " + TOKENIZER_JSON);
    }
    return id;
  }

  private void checkRange(int id, Path file) {
    if (id >= vocabSize) {
      throw new IllegalArgumentException(
          file + ": special token id " + id + " must be below the vocabulary size " + vocabSize);
    }
  }

  private static int firstOf(OptionalInt... candidates) {
    for (OptionalInt c : candidates) {
      if (c.isPresent()) {
        return c.getAsInt();
      }
    }
    return -1;
  }

  private static int[] eosIds(List<Integer> generation, int eos) {
    if (!generation.isEmpty()) {
      return generation.stream().mapToInt(Integer::intValue).toArray();
    }
    return eos >= 0 ? new int[] {eos} : new int[0];
  }

  private static int[] concat(int[] a, int[] b) {
    int[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static boolean contains(int[] ids, int id) {
    return id >= 0 && Arrays.stream(ids).anyMatch(x -> x == id);
  }

  private static int[] toInts(long[] ids) {
    return Arrays.stream(ids).mapToInt(Math::toIntExact).toArray();
  }

  private static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JVM lacks SHA-256, which every Java SE must provide", e);
    }
  }
}
