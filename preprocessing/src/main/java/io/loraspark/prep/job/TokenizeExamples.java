package io.loraspark.prep.job;

import io.loraspark.prep.schema.RejectReason;
import io.loraspark.prep.schema.RowRejection;
import io.loraspark.prep.shard.ExampleKeys;
import io.loraspark.prep.template.TemplateKind;
import io.loraspark.prep.tokenize.EncodedExample;
import io.loraspark.prep.tokenize.ExampleEncoder;
import io.loraspark.prep.tokenize.TokenizerSpec;
import java.util.Iterator;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;

/**
 * Executor step 2: render, tokenize, mask and size each unique example, and give it its split and
 * shard. The encoder (tokenizer + template) comes from the executor JVM's cache: one per JVM, never
 * in the closure.
 */
final class TokenizeExamples implements FlatMapFunction<Iterator<Outcome.Mapped>, Outcome> {
  private final Broadcast<TokenizerSpec> spec;
  private final TemplateKind template;
  private final int maxSeqLen;
  private final TooLongPolicy onTooLong;
  private final long seed;
  private final double evalFraction;
  private final int shards;

  TokenizeExamples(
      Broadcast<TokenizerSpec> spec, TemplateKind template, int maxSeqLen, PreprocessConfig c) {
    this.spec = spec;
    this.template = template;
    this.maxSeqLen = maxSeqLen;
    this.onTooLong = c.onTooLong();
    this.seed = c.seed();
    this.evalFraction = c.evalFraction();
    this.shards = c.shards();
  }

  @Override
  public Iterator<Outcome> call(Iterator<Outcome.Mapped> rows) {
    ExampleEncoder encoder = ExampleEncoder.cached(spec.value(), template);
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        return rows.hasNext();
      }

      @Override
      public Outcome next() {
        return encode(encoder, rows.next());
      }
    };
  }

  Outcome encode(ExampleEncoder encoder, Outcome.Mapped m) {
    try {
      EncodedExample e = encoder.encode(m.conversation());
      boolean truncated = e.length() > maxSeqLen;
      if (truncated && onTooLong == TooLongPolicy.REJECT) {
        throw new RowRejection(
            RejectReason.TOO_LONG,
            e.length() + " tokens > max_seq_len " + maxSeqLen + " (on-too-long=reject)");
      }
      e = e.truncate(maxSeqLen);
      if (e.labelTokens() == 0) {
        throw new RowRejection(
            RejectReason.TOO_LONG,
            "the prompt fills max_seq_len "
                + maxSeqLen
                + ": no response token is left after truncation");
      }
      ExampleKeys k = ExampleKeys.of(seed, m.exampleId(), evalFraction, shards);
      return new Outcome.Tokenized(
          m.file() + ":" + m.rowNumber(),
          m.exampleId(),
          e.inputIds(),
          e.labels(),
          k.eval(),
          k.shard(),
          k.order(),
          truncated);
    } catch (RowRejection r) {
      return m.reject(r.reason(), r.getMessage());
    }
  }
}
