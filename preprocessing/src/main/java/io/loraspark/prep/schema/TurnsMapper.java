package io.loraspark.prep.schema;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Multi-turn records holding a list of messages: ShareGPT ({@code conversations: [{from, value}]},
 * roles human/gpt/system) and OpenAI chat ({@code messages: [{role, content}]}). Message content is
 * a string, or (OpenAI) a list of {@code {"type": "text", "text": ...}} parts, which are joined.
 *
 * @param listField the field holding the messages
 * @param roleField the role key of a message
 * @param contentField the content key of a message
 * @param roles accepted role names (lower case) and what they mean
 */
public record TurnsMapper(
    String listField, String roleField, String contentField, Map<String, Role> roles)
    implements RecordMapper {

  /** ShareGPT: {@code conversations} of {@code {from, value}}. */
  public static final TurnsMapper SHAREGPT =
      new TurnsMapper(
          "conversations",
          "from",
          "value",
          Map.of(
              "system", Role.SYSTEM,
              "human", Role.USER,
              "user", Role.USER,
              "gpt", Role.ASSISTANT,
              "assistant", Role.ASSISTANT,
              "chatgpt", Role.ASSISTANT));

  /** OpenAI chat: {@code messages} of {@code {role, content}}. */
  public static final TurnsMapper MESSAGES =
      new TurnsMapper(
          "messages",
          "role",
          "content",
          Map.of(
              "system", Role.SYSTEM,
              "developer", Role.SYSTEM,
              "user", Role.USER,
              "assistant", Role.ASSISTANT));

  /** Copies the role table. */
  public TurnsMapper {
    roles = Map.copyOf(roles);
  }

  @Override
  public Conversation map(JsonNode record) {
    JsonNode list = Fields.requiredArray(record, listField);
    List<Turn> turns = new ArrayList<>(list.size());
    for (int i = 0; i < list.size(); i++) {
      String where = listField + "[" + i + "]";
      JsonNode message = Fields.requiredObject(list.get(i), where);
      String roleName = within(where, () -> Fields.requiredText(message, roleField));
      Role role = roles.get(roleName.toLowerCase(Locale.ROOT));
      if (role == null) {
        throw new RowRejection(
            RejectReason.INVALID_CONVERSATION,
            where
                + "."
                + roleField
                + " is \""
                + roleName
                + "\"; supported roles are "
                + roles.keySet().stream().sorted().toList());
      }
      turns.add(Turn.of(role, content(message, where)));
    }
    return new Conversation(turns);
  }

  private String content(JsonNode message, String where) {
    JsonNode node = message.get(contentField);
    if (node != null && node.isArray()) {
      StringBuilder text = new StringBuilder();
      for (JsonNode part : node) {
        if (!part.isObject() || !"text".equals(part.path("type").asText(null))) {
          throw new RowRejection(
              RejectReason.WRONG_TYPE,
              where + "." + contentField + " parts must be {\"type\": \"text\", \"text\": ...}");
        }
        text.append(Fields.requiredText(part, "text"));
      }
      if (text.toString().isBlank()) {
        throw new RowRejection(RejectReason.EMPTY_FIELD, where + "." + contentField + " is empty");
      }
      return text.toString();
    }
    return within(where, () -> Fields.requiredText(message, contentField));
  }

  private static String within(String where, java.util.function.Supplier<String> read) {
    try {
      return read.get();
    } catch (RowRejection e) {
      throw new RowRejection(e.reason(), where + ": " + e.getMessage());
    }
  }

  @Override
  public String describe() {
    return "turns(" + listField + "[]." + roleField + ", " + listField + "[]." + contentField + ")";
  }
}
