package io.loraspark.prep.ml;

import io.loraspark.prep.job.TooLongPolicy;
import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.RejectReason;
import io.loraspark.prep.schema.RowRejection;
import io.loraspark.prep.template.TemplateKind;
import io.loraspark.prep.tokenize.EncodedExample;
import io.loraspark.prep.tokenize.ExampleEncoder;
import io.loraspark.prep.tokenize.TokenizerSpec;
import java.util.Iterator;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import scala.collection.immutable.ArraySeq;

/** Executor side of {@link InstructionTokenizer}: one output row per input row. */
final class TokenizeRows implements MapPartitionsFunction<Row, Row> {
  private final Broadcast<TokenizerSpec> spec;
  private final TemplateKind template;
  private final int maxSeqLen;
  private final TooLongPolicy onTooLong;
  private final int instruction;
  private final int context;
  private final int response;

  TokenizeRows(
      Broadcast<TokenizerSpec> spec,
      TemplateKind template,
      int maxSeqLen,
      TooLongPolicy onTooLong,
      int instruction,
      int context,
      int response) {
    this.spec = spec;
    this.template = template;
    this.maxSeqLen = maxSeqLen;
    this.onTooLong = onTooLong;
    this.instruction = instruction;
    this.context = context;
    this.response = response;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> rows) {
    ExampleEncoder encoder = ExampleEncoder.cached(spec.value(), template);
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        return rows.hasNext();
      }

      @Override
      public Row next() {
        return transform(encoder, rows.next());
      }
    };
  }

  private Row transform(ExampleEncoder encoder, Row r) {
    Object[] values = new Object[r.length() + 3];
    for (int i = 0; i < r.length(); i++) {
      values[i] = r.get(i);
    }
    try {
      EncodedExample e = encoder.encode(conversation(r));
      if (e.length() > maxSeqLen && onTooLong == TooLongPolicy.REJECT) {
        throw new RowRejection(RejectReason.TOO_LONG, e.length() + " tokens > " + maxSeqLen);
      }
      e = e.truncate(maxSeqLen);
      if (e.labelTokens() == 0) {
        throw new RowRejection(RejectReason.TOO_LONG, "no response token left after truncation");
      }
      // a Scala Seq, Row's external type for array<int>: a later stage may receive this very
      // object when the optimizer removes the encode/decode between two mapPartitions
      values[r.length()] = ArraySeq.unsafeWrapArray(e.inputIds());
      values[r.length() + 1] = ArraySeq.unsafeWrapArray(e.labels());
    } catch (RowRejection x) {
      values[r.length() + 2] = x.reason().code();
    }
    return RowFactory.create(values);
  }

  private Conversation conversation(Row r) {
    String prompt = text(r, instruction, "instruction");
    String answer = text(r, response, "response");
    String ctx = context < 0 || r.isNullAt(context) ? "" : r.getString(context);
    return Conversation.single(prompt, ctx.isBlank() ? "" : ctx, answer);
  }

  private static String text(Row r, int i, String what) {
    if (r.isNullAt(i)) {
      throw new RowRejection(RejectReason.MISSING_FIELD, what + " is null");
    }
    String s = r.getString(i);
    if (s.isBlank()) {
      throw new RowRejection(RejectReason.EMPTY_FIELD, what + " is empty");
    }
    return s;
  }
}
