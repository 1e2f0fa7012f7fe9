import { useEffect, useRef, useState } from "preact/hooks";

let ask = null;

/**
 * Asks before something that cannot be undone; resolves true when confirmed. A modal
 * `<dialog>` keeps focus inside it and closes on Escape, unlike a page-drawn overlay.
 */
export function confirmAction({ title, body = "", confirm = "Delete" }) {
  return new Promise((resolve) => ask?.({ title, body, confirm, resolve }));
}

/** The one dialog `confirmAction` opens; mounted once by the app. */
export function ConfirmHost() {
  const [request, setRequest] = useState(null);
  const dialog = useRef(null);
  const returnFocus = useRef(null);

  useEffect(() => {
    ask = (next) => {
      returnFocus.current = document.activeElement;
      setRequest(next);
    };
    return () => {
      ask = null;
    };
  }, []);
  useEffect(() => {
    if (request && !dialog.current.open) dialog.current.showModal();
  }, [request]);

  const finish = (answer) => {
    dialog.current.close();
    request.resolve(answer);
    setRequest(null);
    returnFocus.current?.focus?.();
  };

  return (
    <dialog
      ref={dialog}
      class="confirm"
      aria-labelledby="confirm-title"
      aria-describedby="confirm-body"
      data-testid="confirm-dialog"
      onCancel={(event) => {
        event.preventDefault();
        finish(false);
      }}
    >
      {request && (
        <>
          <h2 id="confirm-title">{request.title}</h2>
          <p id="confirm-body">{request.body}</p>
          <div class="actions">
            <button type="button" autofocus onClick={() => finish(false)}>
              Cancel
            </button>
            <button type="button" class="danger" data-testid="confirm-yes" onClick={() => finish(true)}>
              {request.confirm}
            </button>
          </div>
        </>
      )}
    </dialog>
  );
}
