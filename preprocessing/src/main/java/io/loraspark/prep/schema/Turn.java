package io.loraspark.prep.schema;

import java.io.Serializable;
import java.util.Objects;

/**
 * One turn of a normalized conversation.
 *
 * @param role who speaks
 * @param content the text, never null
 * @param context extra input that belongs to a user turn (Alpaca {@code input}, Dolly {@code
 *     context}); empty when there is none. Templates place it (the Alpaca template in its "###
 *     Input:" section, chat templates after the content, separated by a blank line).
 */
public record Turn(Role role, String content, String context) implements Serializable {

  /** Validates that no component is null. */
  public Turn {
    Objects.requireNonNull(role, "role");
    Objects.requireNonNull(content, "content");
    Objects.requireNonNull(context, "context");
  }

  /** A turn without context. */
  public static Turn of(Role role, String content) {
    return new Turn(role, content, "");
  }

  /** Content and context joined as one message, the way chat templates receive a user turn. */
  public String contentWithContext() {
    return context.isEmpty() ? content : content + "\n\n" + context;
  }
}
