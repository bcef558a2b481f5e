package io.loraspark.prep.schema;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Single-turn records with named fields: Alpaca ({@code instruction, input, output}), Dolly ({@code
 * instruction, context, response}) and user column mappings.
 *
 * @param promptField required instruction/prompt field
 * @param contextField optional context/input field, or null
 * @param responseField required response/output field
 * @param systemField optional system-prompt field, or null
 */
public record FieldsMapper(
    String promptField, String contextField, String responseField, String systemField)
    implements RecordMapper {

  /** Alpaca: {@code instruction}, optional {@code input}, {@code output}. */
  public static final FieldsMapper ALPACA =
      new FieldsMapper("instruction", "input", "output", null);

  /** Dolly: {@code instruction}, optional {@code context}, {@code response}. */
  public static final FieldsMapper DOLLY =
      new FieldsMapper("instruction", "context", "response", null);

  /** Requires the prompt and response field names. */
  public FieldsMapper {
    Objects.requireNonNull(promptField, "promptField");
    Objects.requireNonNull(responseField, "responseField");
  }

  @Override
  public Conversation map(JsonNode record) {
    String prompt = Fields.requiredText(record, promptField);
    String context = Fields.optionalText(record, contextField);
    String response = Fields.requiredText(record, responseField);
    String system = Fields.optionalText(record, systemField);
    List<Turn> turns = new ArrayList<>(3);
    if (!system.isBlank()) {
      turns.add(Turn.of(Role.SYSTEM, system));
    }
    turns.add(new Turn(Role.USER, prompt, context.isBlank() ? "" : context));
    turns.add(Turn.of(Role.ASSISTANT, response));
    return new Conversation(turns);
  }

  @Override
  public String describe() {
    StringBuilder s = new StringBuilder("fields(prompt=").append(promptField);
    if (contextField != null) {
      s.append(", context=").append(contextField);
    }
    s.append(", response=").append(responseField);
    if (systemField != null) {
      s.append(", system=").append(systemField);
    }
    return s.append(')').toString();
  }
}
