package io.loraspark.prep.job;

import com.fasterxml.jackson.databind.JsonNode;
import io.loraspark.prep.read.RawRecord;
import io.loraspark.prep.read.StrictJson;
import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.RecordMapper;
import io.loraspark.prep.schema.RejectReason;
import io.loraspark.prep.schema.RowRejection;
import org.apache.spark.api.java.function.Function;

/** Executor step 1: raw record → strict JSON → conversation, or a rejection with its reason. */
final class MapRecord implements Function<RawRecord, Outcome> {
  private final RecordMapper mapper;
  private final int rawLimit;

  MapRecord(RecordMapper mapper, int rawLimit) {
    this.mapper = mapper;
    this.rawLimit = rawLimit;
  }

  @Override
  public Outcome call(RawRecord r) {
    String raw = r.raw().length() <= rawLimit ? r.raw() : r.raw().substring(0, rawLimit);
    int rawLength = r.raw().length();
    if (r.error() != null) {
      return new Outcome.Rejected(
          r.fileIndex(), r.file(), r.rowNumber(), raw, rawLength, r.error(), r.errorMessage());
    }
    try {
      JsonNode node = StrictJson.parse(r.raw());
      if (!node.isObject()) {
        throw new RowRejection(
            RejectReason.NOT_AN_OBJECT,
            "a record must be a JSON object but is a JSON "
                + node.getNodeType().name().toLowerCase(java.util.Locale.ROOT));
      }
      Conversation c = mapper.map(node);
      return new Outcome.Mapped(
          r.fileIndex(), r.file(), r.rowNumber(), raw, rawLength, c.exampleId(), c);
    } catch (RowRejection e) {
      return new Outcome.Rejected(
          r.fileIndex(), r.file(), r.rowNumber(), raw, rawLength, e.reason(), e.getMessage());
    }
  }
}
