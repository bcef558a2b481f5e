package io.loraspark.prep.template;

import io.loraspark.prep.schema.Conversation;
import java.util.List;

/**
 * Renders a conversation into text pieces, marking which are the assistant's (scored). Templates
 * are created once per executor JVM and must be thread-safe.
 */
public interface PromptTemplate {

  /**
   * @param conversation a valid conversation
   * @return pieces whose scored parts are exactly the assistant turns (plus their end marker)
   * @throws io.loraspark.prep.schema.RowRejection ({@code template_error}) if the template fails on
   *     this conversation
   */
  List<Piece> render(Conversation conversation);

  /** {@code alpaca} or {@code chat}, as recorded in the manifest. */
  String name();
}
