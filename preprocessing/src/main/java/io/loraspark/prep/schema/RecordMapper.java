package io.loraspark.prep.schema;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.Serializable;

/**
 * Maps one parsed input record (a JSON object) onto a {@link Conversation}. Implementations are
 * stateless and serializable: they run inside Spark tasks.
 */
public interface RecordMapper extends Serializable {

  /**
   * @param record a JSON object
   * @return the normalized conversation
   * @throws RowRejection if a required field is missing, empty or of the wrong type, or the turns
   *     do not form a conversation
   */
  Conversation map(JsonNode record);

  /** Short description for logs and the manifest, e.g. {@code alpaca(instruction,input,output)}. */
  String describe();
}
