package io.loraspark.prep.schema;

import com.fasterxml.jackson.databind.JsonNode;

/** Typed access to the fields of a JSON record, rejecting the row on a bad value. */
final class Fields {

  private Fields() {}

  /**
   * The text of a required field.
   *
   * @throws RowRejection if it is absent or null ({@code missing_field}), not a string ({@code
   *     wrong_type}) or blank ({@code empty_field})
   */
  static String requiredText(JsonNode record, String field) {
    JsonNode node = record.get(field);
    if (node == null || node.isNull()) {
      throw new RowRejection(
          RejectReason.MISSING_FIELD, "required field \"" + field + "\" is missing or null");
    }
    String text = text(node, field);
    if (text.isBlank()) {
      throw new RowRejection(
          RejectReason.EMPTY_FIELD, "required field \"" + field + "\" is empty or blank");
    }
    return text;
  }

  /**
   * The text of an optional field; empty when absent or null.
   *
   * @throws RowRejection ({@code wrong_type}) if present but not a string
   */
  static String optionalText(JsonNode record, String field) {
    if (field == null) {
      return "";
    }
    JsonNode node = record.get(field);
    return node == null || node.isNull() ? "" : text(node, field);
  }

  /**
   * A required non-empty array.
   *
   * @throws RowRejection if absent, null, not an array or empty
   */
  static JsonNode requiredArray(JsonNode record, String field) {
    JsonNode node = record.get(field);
    if (node == null || node.isNull()) {
      throw new RowRejection(
          RejectReason.MISSING_FIELD, "required field \"" + field + "\" is missing or null");
    }
    if (!node.isArray()) {
      throw new RowRejection(
          RejectReason.WRONG_TYPE, "field \"" + field + "\" must be an array but is " + type(node));
    }
    if (node.isEmpty()) {
      throw new RowRejection(RejectReason.EMPTY_FIELD, "field \"" + field + "\" is an empty array");
    }
    return node;
  }

  /**
   * A required object (an array element such as a message).
   *
   * @throws RowRejection ({@code wrong_type}) if not an object
   */
  static JsonNode requiredObject(JsonNode node, String where) {
    if (!node.isObject()) {
      throw new RowRejection(
          RejectReason.WRONG_TYPE, where + " must be an object but is " + type(node));
    }
    return node;
  }

  private static String text(JsonNode node, String field) {
    if (!node.isTextual()) {
      throw new RowRejection(
          RejectReason.WRONG_TYPE,
          "field \"" + field + "\" must be a string but is " + type(node) + " " + clip(node));
    }
    return node.textValue();
  }

  /** JSON type name of a node for messages: string, number, boolean, array, object, null. */
  static String type(JsonNode node) {
    return switch (node.getNodeType()) {
      case STRING -> "a string";
      case NUMBER -> "a number";
      case BOOLEAN -> "a boolean";
      case ARRAY -> "an array";
      case OBJECT, POJO -> "an object";
      case NULL -> "null";
      default -> node.getNodeType().name().toLowerCase(java.util.Locale.ROOT);
    };
  }

  private static String clip(JsonNode node) {
    String s = node.toString();
    return s.length() <= 40 ? s : s.substring(0, 40) + "...";
  }
}
