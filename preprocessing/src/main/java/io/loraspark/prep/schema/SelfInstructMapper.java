package io.loraspark.prep.schema;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Self-instruct task records ({@code {instruction, instances: [{input, output}]}}): one instance
 * per record becomes one example; records with several instances are rejected (flatten them to
 * Alpaca rows first) so that one input row stays one example.
 */
public final class SelfInstructMapper implements RecordMapper {
  private static final long serialVersionUID = 1L;

  /** The shared instance. */
  public static final SelfInstructMapper INSTANCE = new SelfInstructMapper();

  private SelfInstructMapper() {}

  @Override
  public Conversation map(JsonNode record) {
    String instruction = Fields.requiredText(record, "instruction");
    JsonNode instances = Fields.requiredArray(record, "instances");
    if (instances.size() != 1) {
      throw new RowRejection(
          RejectReason.INVALID_CONVERSATION,
          "\"instances\" has "
              + instances.size()
              + " entries; only one instance per task is supported (flatten to Alpaca rows)");
    }
    JsonNode instance = Fields.requiredObject(instances.get(0), "instances[0]");
    String input = Fields.optionalText(instance, "input");
    String output = Fields.requiredText(instance, "output");
    return Conversation.single(instruction, input.isBlank() ? "" : input, output);
  }

  @Override
  public String describe() {
    return "self-instruct(instruction, instances[0].input, instances[0].output)";
  }

  private Object readResolve() {
    return INSTANCE;
  }
}
