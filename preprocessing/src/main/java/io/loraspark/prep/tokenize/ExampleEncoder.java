package io.loraspark.prep.tokenize;

import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.RejectReason;
import io.loraspark.prep.schema.RowRejection;
import io.loraspark.prep.shard.ShardSchema;
import io.loraspark.prep.template.AlpacaTemplate;
import io.loraspark.prep.template.ChatTemplate;
import io.loraspark.prep.template.Piece;
import io.loraspark.prep.template.PromptTemplate;
import io.loraspark.prep.template.TemplateKind;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Turns a conversation into token ids and labels: render with the prompt template, tokenize, mask.
 *
 * <p>Masking is exact by construction. The template returns pieces marked scored or not; the text
 * between two EOS pieces is tokenized in one call (so the prompt and the reply are tokenized
 * together, as {@code tokenizer(prompt + reply)} would), with each token's source range in the
 * text. A token gets a label only if its range lies inside a scored piece; a token that straddles a
 * piece boundary rejects the row ({@code mask_boundary}) instead of guessing, much as HF's {@code
 * DataCollatorForCompletionOnlyLM} skips an example whose response template it cannot find. EOS
 * pieces become the tokenizer's EOS id, scored. The first text is tokenized with special tokens
 * (BOS as the tokenizer config says; never two BOS when a chat template writes one), the rest
 * without.
 */
public final class ExampleEncoder {

  private static final Map<String, ExampleEncoder> CACHE = new ConcurrentHashMap<>();

  private final TextTokenizer tokenizer;
  private final PromptTemplate template;

  /**
   * @param tokenizer the tokenizer
   * @param template the prompt template
   */
  public ExampleEncoder(TextTokenizer tokenizer, PromptTemplate template) {
    this.tokenizer = tokenizer;
    this.template = template;
  }

  /**
   * The executor JVM's encoder for a tokenizer and a resolved template kind (one per JVM).
   *
   * @param kind {@link TemplateKind#ALPACA} or {@link TemplateKind#CHAT}
   */
  public static ExampleEncoder cached(TokenizerSpec spec, TemplateKind kind) {
    return CACHE.computeIfAbsent(
        spec.modelDir() + "#" + spec.key() + "#" + kind,
        k -> {
          TextTokenizer t = TokenizerCache.get(spec);
          return new ExampleEncoder(t, template(kind, t));
        });
  }

  /**
   * A template of a resolved kind for {@code tokenizer}.
   *
   * @throws IllegalArgumentException for {@link TemplateKind#AUTO} or a chat template the tokenizer
   *     does not have
   */
  public static PromptTemplate template(TemplateKind kind, TextTokenizer tokenizer) {
    return switch (kind) {
      case ALPACA -> new AlpacaTemplate();
      case CHAT ->
          new ChatTemplate(
              tokenizer
                  .chatTemplate()
                  .orElseThrow(
                      () -> new IllegalArgumentException("the tokenizer has no chat_template")),
              tokenText(tokenizer, tokenizer.bosId()),
              tokenText(tokenizer, tokenizer.eosId()));
      case AUTO -> throw new IllegalArgumentException("resolve the template kind first");
    };
  }

  private static String tokenText(TextTokenizer tokenizer, int id) {
    return id < 0 ? "" : tokenizer.decode(new int[] {id}, false).strip();
  }

  /** The tokenizer. */
  public TextTokenizer tokenizer() {
    return tokenizer;
  }

  /** The template. */
  public PromptTemplate template() {
    return template;
  }

  /**
   * Renders, tokenizes and masks one conversation (not truncated).
   *
   * @throws RowRejection if the template fails, a token straddles a scored boundary, or nothing is
   *     scored
   */
  public EncodedExample encode(Conversation conversation) {
    List<Piece> pieces = template.render(conversation);
    Tokens out = new Tokens();
    StringBuilder run = new StringBuilder();
    List<int[]> scored = new ArrayList<>();
    int codePoints = 0;
    for (Piece piece : pieces) {
      if (piece instanceof Piece.Text t) {
        int n = t.text().codePointCount(0, t.text().length());
        if (t.trainable() && n > 0) {
          scored.add(new int[] {codePoints, codePoints + n});
        }
        run.append(t.text());
        codePoints += n;
      } else {
        flush(run, scored, out);
        codePoints = 0;
        out.eos(tokenizer.eosId());
      }
    }
    if (run.length() > 0 || out.size == 0) {
      flush(run, scored, out);
    }
    EncodedExample example = out.build();
    if (example.labelTokens() == 0) {
      throw new RowRejection(
          RejectReason.TEMPLATE_ERROR, "the rendered example has no response token to score");
    }
    return example;
  }

  private void flush(StringBuilder run, List<int[]> scored, Tokens out) {
    TokenSpans spans = tokenizer.encodeWithSpans(run.toString(), out.size == 0);
    for (int i = 0; i < spans.size(); i++) {
      out.add(spans.ids()[i], label(spans, i, scored));
    }
    run.setLength(0);
    scored.clear();
  }

  private static int label(TokenSpans spans, int i, List<int[]> scored) {
    int start = spans.starts()[i];
    int end = spans.ends()[i];
    if (start < 0) {
      return ShardSchema.IGNORE_INDEX;
    }
    for (int[] range : scored) {
      if (start >= range[0] && end <= range[1] && start < range[1]) {
        return spans.ids()[i];
      }
      if (start < range[1] && end > range[0]) {
        throw new RowRejection(
            RejectReason.MASK_BOUNDARY,
            "token "
                + spans.ids()[i]
                + " covers characters "
                + start
                + ".."
                + end
                + " across the response boundary at "
                + (start < range[0] ? range[0] : range[1])
                + ", so no exact mask exists");
      }
    }
    return ShardSchema.IGNORE_INDEX;
  }

  /** Growable ids + labels. */
  private static final class Tokens {
    int[] ids = new int[256];
    int[] labels = new int[256];
    int size;

    void add(int id, int label) {
      if (size == ids.length) {
        ids = Arrays.copyOf(ids, size * 2);
        labels = Arrays.copyOf(labels, size * 2);
      }
      ids[size] = id;
      labels[size++] = label;
    }

    /** Appends a scored EOS, or scores the EOS the tokenizer just appended (add_eos_token). */
    void eos(int eosId) {
      if (eosId < 0) {
        return;
      }
      if (size > 0 && ids[size - 1] == eosId && labels[size - 1] == ShardSchema.IGNORE_INDEX) {
        labels[size - 1] = eosId;
      } else {
        add(eosId, eosId);
      }
    }

    EncodedExample build() {
      return new EncodedExample(Arrays.copyOf(ids, size), Arrays.copyOf(labels, size));
    }
  }
}
