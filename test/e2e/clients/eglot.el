;;; eglot.el --- end-to-end driver for opencode-lsp in Emacs eglot  -*- lexical-binding: t -*-

;; Drives the server through eglot in batch mode: Emacs 28 + Debian's elpa-eglot 1.9, or Emacs 29+ with its
;; built-in eglot (Emacs 30: eglot 1.17).
;;   emacs --batch -Q -l test/e2e/clients/eglot.el
;; Environment and report: see client.js (E2E_SERVER, E2E_SERVER_ARGS, E2E_WORKSPACE, E2E_SCENARIO, E2E_REPORT,
;; E2E_LOG = eglot's events buffer, E2E_ENCODING, E2E_TIMEOUT_MS).
;;
;; Everything goes through eglot: buffers and their didOpen/didChange, eglot's own position conversion, its
;; code-action request and menu (the script answers the menu), its handlers for workspace/applyEdit,
;; workspace/configuration (from `eglot-workspace-configuration'), window/showMessageRequest (the script
;; answers `completing-read'), window/showDocument and $/progress (1.17), and flymake for diagnostics.
;; eglot 1.17 negotiates the position encoding itself (it offers utf-32, utf-8, utf-16); eglot 1.9 counts
;; UTF-16 and, configured the documented way (`eglot-current-column-function'), code points: with
;; E2E_ENCODING=utf-32 the script offers utf-32 and switches those functions when the server accepts it.

;;; Code:

(setq native-comp-jit-compilation nil native-comp-enable-subr-trampolines nil) ; no child emacs (see install.sh)
(set-language-environment "UTF-8")     ; as in a UTF-8 locale, whatever LANG the test runs with
(prefer-coding-system 'utf-8-unix)
(setq user-emacs-directory (expand-file-name "emacs.d/" (or (getenv "HOME") temporary-file-directory)))
(when (< emacs-major-version 29)        ; Debian's elpa-eglot and its newer project/xref; 29+ has eglot built in
  (dolist (d (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*"))
    (add-to-list 'load-path d)))
(require 'eglot)
(require 'cl-lib)
(require 'flymake)
(require 'json)

(defvar e2e-t0 (float-time))
(defvar e2e-timeout (/ (string-to-number (or (getenv "E2E_TIMEOUT_MS") "20000")) 1000.0))
(when (<= e2e-timeout 0) (setq e2e-timeout 20.0))
(defvar e2e-root (directory-file-name (expand-file-name (getenv "E2E_WORKSPACE"))))
(defvar e2e-encoding (let ((e (getenv "E2E_ENCODING"))) (and e (not (string-empty-p e)) e)))
(defvar e2e-scenario
  (with-temp-buffer
    (insert-file-contents (getenv "E2E_SCENARIO"))
    (json-parse-buffer :object-type 'hash-table :array-type 'array :null-object nil :false-object :json-false)))

(defun e2e-get (obj &rest keys)
  "Walk hash tables OBJ by KEYS (strings)."
  (while (and keys obj) (setq obj (and (hash-table-p obj) (gethash (pop keys) obj))))
  obj)
(defun e2e-obj (&rest kvs)
  "A JSON object (hash table) from alternating string keys and values."
  (let ((h (make-hash-table :test 'equal)))
    (while kvs (puthash (pop kvs) (pop kvs) h))
    h))
(defun e2e-push (table key value)
  "Append VALUE to the list under KEY of hash TABLE (kept as a list until the report is written)."
  (puthash key (append (gethash key table) (list value)) table))
(defun e2e-bump (table key) (puthash key (1+ (or (gethash key table) 0)) table))

(defvar e2e-report
  (e2e-obj "client" (e2e-obj "name" "emacs eglot" "version" (format "emacs %s, eglot %s" emacs-version
                                                                (or (and (assq 'eglot package--builtin-versions)
                                                                         (mapconcat #'number-to-string (cdr (assq 'eglot package--builtin-versions)) "."))
                                                                    (and (< emacs-major-version 29) "1.9")
                                                                    "?"))
                             "mode" "editor")
           "encoding" :null "initializeResult" :null "results" (e2e-obj) "diagnostics" (e2e-obj)
           "publishedDiagnostics" (e2e-obj) "serverRequests" (e2e-obj) "serverNotifications" (e2e-obj)
           "notifications" (e2e-obj) "documents" (e2e-obj) "stepsDone" 0 "error" :null))
(defvar e2e-lists (e2e-obj))             ; progress, showMessages, ... (lists until written)
(defvar e2e-server nil)
(defvar e2e-events-buffer nil)

;;;; paths, URIs

(defun e2e-path (file) (expand-file-name file e2e-root))
(defun e2e-uri (file)
  (if (fboundp 'eglot-path-to-uri) (eglot-path-to-uri (e2e-path file)) (eglot--path-to-uri (e2e-path file))))
(defun e2e-rel (uri)
  (let ((p (if (fboundp 'eglot-uri-to-path) (eglot-uri-to-path uri) (eglot--uri-to-path uri))))
    (if (string-prefix-p (concat e2e-root "/") p) (substring p (1+ (length e2e-root))) uri)))
(defun e2e-expand (v)
  "Replace ${uri:FILE}, ${rootUri} and ${root} in the strings of V."
  (cond ((stringp v)
         (let ((s (replace-regexp-in-string "\\${uri:\\([^}]+\\)}" (lambda (m) (e2e-uri (match-string 1 m))) v t t)))
           (setq s (replace-regexp-in-string "\\${rootUri}" (e2e-uri "") s t t))
           (replace-regexp-in-string "\\${root}" e2e-root s t t)))
        ((vectorp v) (apply #'vector (mapcar #'e2e-expand v)))
        ((hash-table-p v) (let ((h (make-hash-table :test 'equal)))
                            (maphash (lambda (k x) (puthash k (e2e-expand x) h)) v) h))
        (t v)))

;;;; eglot set-up

(define-derived-mode go-mode prog-mode "Go")          ; stand-in major modes: eglot's languageId is the mode's
(define-derived-mode typescript-mode prog-mode "TS")  ; name without -mode
(define-derived-mode python-e2e-mode prog-mode "Py")
(defvar e2e-modes '(("go" . go-mode) ("ts" . typescript-mode) ("py" . python-e2e-mode)))

(let* ((args (append (json-parse-string (or (getenv "E2E_SERVER_ARGS") "[]")) nil))
       (init (e2e-get e2e-scenario "initializationOptions"))
       (contact `(,(getenv "E2E_SERVER") ,@args ,@(and init (list :initializationOptions init)))))
  (setq eglot-server-programs (list (cons (mapcar #'cdr e2e-modes) contact))))
(setq eglot-sync-connect t eglot-autoshutdown nil eglot-connect-timeout (max 1 (ceiling e2e-timeout))
      jsonrpc-default-request-timeout (ceiling e2e-timeout)
      eglot-confirm-server-initiated-edits nil  ; 1.9
      eglot-confirm-server-edits nil            ; 1.17
      eglot-events-buffer-size 4000000          ; 1.9
      eglot-events-buffer-config '(:size 4000000 :format full) ; 1.17
      flymake-no-changes-timeout nil
      browse-url-browser-function (lambda (&rest _) nil)) ; window/showDocument external: never start a browser
(setq-default eglot-workspace-configuration
              (let ((c (e2e-get e2e-scenario "configuration")) (plist nil))
                (when (hash-table-p c)
                  (maphash (lambda (k v) (setq plist (append plist (list (intern (concat ":" k)) v)))) c))
                plist))

;; Narrow the offered position encodings to E2E_ENCODING (eglot 1.17 offers utf-32, utf-8, utf-16; 1.9 none).
(when e2e-encoding
  (advice-add 'eglot-client-capabilities :around
              (lambda (orig server)
                (let ((caps (funcall orig server)))
                  (plist-put caps :general (list :positionEncodings (vector e2e-encoding)))))))

;; Observe the traffic: every server→client message, and the results of requests the client sends.
(defvar e2e-command-responses nil "Answers to workspace/executeCommand, newest first: (result . error).")
(defvar e2e-last-code-action-params nil)
(advice-add 'eglot-handle-notification :before
            (lambda (_server method &rest params)
              (let ((m (format "%s" method)))
                (e2e-bump (gethash "serverNotifications" e2e-report) m)
                (cond
                 ((equal m "$/progress")
                  (let ((v (plist-get params :value)))
                    (e2e-push e2e-lists "progress"
                              (e2e-obj "token" (plist-get params :token) "kind" (plist-get v :kind)
                                       "title" (or (plist-get v :title) :null) "message" (or (plist-get v :message) :null)
                                       "percentage" (or (plist-get v :percentage) :null)))))
                 ((equal m "textDocument/publishDiagnostics")
                  (puthash (e2e-rel (plist-get params :uri)) (plist-get params :diagnostics)
                           (gethash "publishedDiagnostics" e2e-report)))
                 ((equal m "window/showMessage")
                  (e2e-push e2e-lists "showMessages"
                            (e2e-obj "type" (plist-get params :type) "message" (plist-get params :message))))
                 ((not (equal m "window/logMessage"))
                  (e2e-push (gethash "notifications" e2e-report) m params))))))
(advice-add 'eglot-handle-request :around
            (lambda (orig server method &rest params)
              (let ((m (format "%s" method)))
                (e2e-bump (gethash "serverRequests" e2e-report) m)
                (when (equal m "window/showDocument")
                  (e2e-push e2e-lists "showDocuments"
                            (e2e-obj "uri" (plist-get params :uri)
                                     "external" (if (eq (plist-get params :external) t) t :json-false)
                                     "takeFocus" (if (eq (plist-get params :takeFocus) t) t :json-false))))
                (if (not (equal m "workspace/applyEdit"))
                    (apply orig server method params)
                  (condition-case err
                      (let ((res (apply orig server method params)))
                        (e2e-push e2e-lists "applyEdits"
                                  (e2e-obj "label" (or (plist-get params :label) :null) "applied" t
                                           "failureReason" :null "edit" (plist-get params :edit)))
                        res)
                    (error
                     (e2e-push e2e-lists "applyEdits"
                               (e2e-obj "label" (or (plist-get params :label) :null) "applied" :json-false
                                        "failureReason" (error-message-string err) "edit" (plist-get params :edit)))
                     (signal (car err) (cdr err))))))))
(advice-add 'jsonrpc-request :around
            (lambda (orig conn method params &rest args)
              (when (eq method :textDocument/codeAction) (setq e2e-last-code-action-params params))
              (if (not (eq method :workspace/executeCommand))
                  (apply orig conn method params args)
                (condition-case err
                    (let ((res (apply orig conn method params args)))
                      (push (cons (or res :null) nil) e2e-command-responses)
                      res)
                  (jsonrpc-error
                   (push (cons nil (e2e-obj "code" (or (alist-get 'jsonrpc-error-code (cdr err)) :null)
                                            "message" (or (alist-get 'jsonrpc-error-message (cdr err))
                                                          (error-message-string err))
                                            "data" (or (alist-get 'jsonrpc-error-data (cdr err)) :null)))
                         e2e-command-responses)
                   (signal (car err) (cdr err)))))))

;; window/showMessageRequest and the code-action menu both go through `completing-read'.
(defvar e2e-menu-choice nil "Title the code-action menu picks; nil outside that menu.")
(setq completing-read-function
      (lambda (prompt collection &rest _)
        (unless (or e2e-menu-choice (string-prefix-p "[eglot]" prompt))
          (error "Unexpected prompt in batch mode: %s" prompt))
        (let ((titles (mapcar (lambda (x) (if (consp x) (car x) x)) collection)))
          (if e2e-menu-choice
              (prog1 (or (car (member e2e-menu-choice titles)) (error "No menu entry %s" e2e-menu-choice))
                (setq e2e-menu-choice nil)) ; the menu is answered; prompts while the action runs are the server's
            (let ((chosen nil))
              (cl-loop for rule across (or (e2e-get e2e-scenario "responses" "showMessageRequest") [])
                       for match = (gethash "match" rule)
                       when (or (null match) (string-search match prompt))
                       return (setq chosen (car (member (gethash "choose" rule) titles))))
              (e2e-push e2e-lists "showMessageRequests"
                        (e2e-obj "message" prompt "actions" (apply #'vector titles) "chosen" (or chosen :null)))
              (or chosen (user-error "Dismissed (no scripted choice)")))))))

;;;; waiting

(defun e2e-wait (what pred &optional secs)
  "Pump events until PRED holds, or signal an error naming WHAT after SECS."
  (let ((end (+ (float-time) (or secs e2e-timeout))))
    (while (and (not (funcall pred)) (< (float-time) end))
      (accept-process-output nil 0.02))
    (or (funcall pred) (error "Timed out after %.0f s waiting for %s" (or secs e2e-timeout) what))))

;;;; buffers, positions, diagnostics

(defun e2e-buffer (file)
  (or (get-file-buffer (e2e-path file)) (error "%s is not open" file)))
(defun e2e-resolve (ref)
  "Point for position reference REF in the current buffer."
  (let ((text (gethash "find" ref)) (n (or (gethash "occurrence" ref) 1)))
    (unless (stringp text) (error "Position reference needs \"find\""))
    (save-excursion
      (goto-char (point-min))
      (dotimes (_ n) (unless (search-forward text nil t) (error "Text %s not found" text)))
      (if (equal (gethash "edge" ref) "start") (match-beginning 0) (match-end 0)))))

(defun e2e-severity (type)
  (pcase type ('eglot-error 1) ('eglot-warning 2) ('eglot-note 3) (':error 1) (':warning 2) (':note 3) (_ 4)))
(defun e2e-diagnostics-as-seen (file)
  "FILE's diagnostics as flymake holds them, with the text before and under each one."
  (let ((buf (get-file-buffer (e2e-path file))))
    (if (not buf) []
      (with-current-buffer buf
        (apply #'vector
               (mapcar (lambda (d)
                         (let* ((beg (flymake-diagnostic-beg d)) (end (flymake-diagnostic-end d))
                                (lsp (cdr (assoc 'eglot-lsp-diag (eglot--diag-data d)))))
                           (save-excursion
                             (goto-char beg)
                             (e2e-obj "line" (1- (line-number-at-pos beg)) "endLine" (1- (line-number-at-pos end))
                                      "prefix" (buffer-substring-no-properties (line-beginning-position) beg)
                                      "text" (buffer-substring-no-properties beg end)
                                      "message" (or (plist-get lsp :message) (flymake-diagnostic-text d))
                                      "severity" (or (plist-get lsp :severity) (e2e-severity (flymake-diagnostic-type d)))
                                      "source" (or (plist-get lsp :source) :null)
                                      "code" (or (plist-get lsp :code) :null)))))
                       (sort (flymake-diagnostics) (lambda (a b) (< (flymake-diagnostic-beg a) (flymake-diagnostic-beg b))))))))))

(defun e2e-action-record (a)
  (let ((cmd (plist-get a :command)))
    (if (stringp cmd)
        (e2e-obj "title" (plist-get a :title) "kind" :null "isCommand" t
                 "command" (e2e-obj "title" (plist-get a :title) "command" cmd "arguments" (or (plist-get a :arguments) [])))
      (e2e-obj "title" (plist-get a :title) "kind" (or (plist-get a :kind) :null) "isCommand" :json-false
               "diagnostics" (length (plist-get a :diagnostics)) "command" (or cmd :null)
               "hasEdit" (if (plist-get a :edit) t :json-false)))))

(defun e2e-record-command (res)
  "Store the newest workspace/executeCommand answer in RES."
  (let ((r (car e2e-command-responses)))
    (if (cdr r) (puthash "error" (cdr r) res) (puthash "result" (car r) res))))

;;;; steps

(defun e2e-open (file)
  (let ((buf (find-file-noselect (e2e-path file))))
    (set-buffer buf)
    (switch-to-buffer buf)
    (funcall (or (cdr (assoc (file-name-extension file) e2e-modes)) #'fundamental-mode))
    (if (not e2e-server)
        (progn
          (apply #'eglot (eglot--guess-contact))  ; M-x eglot, non-interactively (eglot-ensure waits for a command loop)
          (e2e-wait "eglot to connect" (lambda () (eglot-current-server)))
          (setq e2e-server (eglot-current-server)
                e2e-events-buffer (ignore-errors (jsonrpc-events-buffer e2e-server)))
          (let* ((caps (eglot--capabilities e2e-server))
                 (enc (or (plist-get caps :positionEncoding) "utf-16")))
            (puthash "initializeResult" (list :capabilities caps :serverInfo (eglot--server-info e2e-server)) e2e-report)
            (puthash "encoding" enc e2e-report)
            (when (and (< emacs-major-version 29) (not (equal enc "utf-16")))
              (unless (equal enc "utf-32") (error "eglot 1.9 cannot count %s" enc))
              ;; eglot 1.9's documented way to count code points (it predates positionEncoding)
              (setq-default eglot-current-column-function #'eglot-current-column
                            eglot-move-to-column-function #'eglot-move-to-column))))
      (eglot--maybe-activate-editing-mode))
    (unless (eglot-managed-p) (error "eglot does not manage %s" file))
    (flymake-mode 1)))

(defun e2e-step (s)
  (let ((op (gethash "op" s)) (id (gethash "id" s)) (results (gethash "results" e2e-report))
        (jsonrpc-default-request-timeout (if (gethash "timeoutMs" s) (ceiling (gethash "timeoutMs" s) 1000)
                                           jsonrpc-default-request-timeout)))
    (pcase op
      ("open" (e2e-open (gethash "file" s)))
      ("close" (with-current-buffer (e2e-buffer (gethash "file" s))  ; unsaved changes are discarded, no prompt
                 (set-buffer-modified-p nil)
                 (let ((kill-buffer-query-functions nil)) (kill-buffer))))
      ("insert" (with-current-buffer (e2e-buffer (gethash "file" s))
                  (goto-char (e2e-resolve (gethash "at" s)))
                  (insert (gethash "text" s))))
      ("save" (with-current-buffer (e2e-buffer (gethash "file" s)) (save-buffer)))
      ("codeAction"
       (with-current-buffer (e2e-buffer (gethash "file" s))
         (switch-to-buffer (current-buffer))
         (let* ((beg (e2e-resolve (gethash "at" s)))
                (end (if (gethash "to" s) (e2e-resolve (gethash "to" s)) beg))
                (only (gethash "only" s))
                (kind (and only (> (length only) 0) (aref only 0)))
                (res (e2e-obj "actions" [] "range" :null))
                (actions (progn (setq e2e-last-code-action-params nil)
                                (eglot-code-actions beg end kind))))
           (puthash id res results)
           (puthash "range" (or (plist-get e2e-last-code-action-params :range) :null) res)
           (puthash "actions" (apply #'vector (mapcar #'e2e-action-record actions)) res)
           (when-let ((choose (gethash "choose" s)))
             (unless (cl-find choose actions :key (lambda (a) (plist-get a :title)) :test #'equal)
               (error "No code action titled %s" choose))
             (let ((n (length e2e-command-responses))
                   (e2e-menu-choice choose)
                   (last-nonmenu-event ?\r)) ; a keyboard-driven menu (completing-read), not a popup
               (puthash "command" (let ((a (cl-find choose actions :key (lambda (a) (plist-get a :title)) :test #'equal)))
                                    (if (stringp (plist-get a :command)) (plist-get a :command)
                                      (plist-get (plist-get a :command) :command)))
                        res)
               (condition-case err
                   (eglot-code-actions beg end kind t) ; eglot's own menu and execution path
                 (jsonrpc-error nil)
                 (error (puthash "error" (e2e-obj "code" :null "message" (error-message-string err)) res)))
               (when (> (length e2e-command-responses) n) (e2e-record-command res)))))))
      ("executeCommand"
       (let ((res (e2e-obj "command" (gethash "command" s)))
             (args (e2e-expand (or (gethash "arguments" s) []))))
         (puthash id res results)
         (if (eq (gethash "async" s) t)
             ;; answered later (see "await"), as eglot's own asynchronous requests are
             (progn
               (puthash "pending" t res)
               (jsonrpc-async-request e2e-server :workspace/executeCommand
                                      (list :command (gethash "command" s) :arguments args)
                                      :success-fn (lambda (result) (remhash "pending" res) (puthash "result" (or result :null) res))
                                      :error-fn (lambda (err)
                                                  (remhash "pending" res)
                                                  (puthash "error" (e2e-obj "code" (or (plist-get err :code) :null)
                                                                            "message" (or (plist-get err :message) "")
                                                                            "data" (or (plist-get err :data) :null))
                                                           res))
                                      :timeout-fn (lambda () (remhash "pending" res)
                                                    (puthash "error" (e2e-obj "code" :null "message" "timed out") res))
                                      :timeout (/ (or (gethash "timeoutMs" s) (* 1000 e2e-timeout)) 1000.0)))
           ;; from a buffer eglot manages, as M-x in a source buffer (eglot 1.17 fails an eglot--request made
           ;; from any other buffer: it fetches changes with a nil track-changes id)
           (with-current-buffer (or (car (eglot--managed-buffers e2e-server)) (current-buffer))
             (condition-case nil
                 (if (fboundp 'eglot-execute)
                     (eglot-execute e2e-server (list :command (gethash "command" s) :arguments args))
                   (eglot-execute-command e2e-server (intern (gethash "command" s)) args))
               (jsonrpc-error nil)))
           (e2e-record-command res))))
      ("await"
       (let ((res (gethash id results)))
         (unless res (error "No asynchronous command %s" id))
         (e2e-wait (format "the answer to %s" id) (lambda () (not (gethash "pending" res)))
                   (and (gethash "timeoutMs" s) (/ (gethash "timeoutMs" s) 1000.0)))))
      ("waitDiagnostics"
       (let* ((file (gethash "file" s)) (source (gethash "source" s))
              (min (or (gethash "min" s) 1)) (max (gethash "max" s))
              (secs (and (gethash "timeoutMs" s) (/ (gethash "timeoutMs" s) 1000.0)))
              (published (lambda () (gethash file (gethash "publishedDiagnostics" e2e-report) 'none)))
              (matching (lambda () (cl-count-if (lambda (d) (or (null source) (equal (plist-get d :source) source)))
                                                (funcall published)))))
         (e2e-wait (format "%s diagnostic(s) on %s" min file)
                   (lambda () (and (not (eq (funcall published) 'none))
                                   (if max (<= (funcall matching) max) (>= (funcall matching) min))))
                   secs)
         (when (get-file-buffer (e2e-path file))
           (e2e-wait (format "flymake to show the diagnostics of %s" file)
                     (lambda ()
                       (with-current-buffer (get-file-buffer (e2e-path file)) (flymake-start))
                       (= (length (e2e-diagnostics-as-seen file)) (length (funcall published))))
                     secs))
         (when id (puthash id (e2e-obj "diagnostics" (e2e-diagnostics-as-seen file)) results))))
      ("waitNotification"
       (let ((m (gethash "method" s)) (min (or (gethash "min" s) 1)))
         (e2e-wait (format "%s %s notification(s)" min m)
                   (lambda () (>= (or (gethash m (gethash "serverNotifications" e2e-report)) 0) min))
                   (and (gethash "timeoutMs" s) (/ (gethash "timeoutMs" s) 1000.0)))))
      ("waitProgress"
       (let ((title (gethash "title" s)))
         (e2e-wait (format "the end of progress %s" (or title ""))
                   (lambda ()
                     (let* ((ps (gethash "progress" e2e-lists))
                            (tokens (cl-loop for p in ps when (and (equal (gethash "kind" p) "begin")
                                                                   (or (null title) (equal (gethash "title" p) title)))
                                             collect (gethash "token" p))))
                       (cl-some (lambda (p) (and (equal (gethash "kind" p) "end") (member (gethash "token" p) tokens))) ps)))
                   (and (gethash "timeoutMs" s) (/ (gethash "timeoutMs" s) 1000.0)))))
      (_ (error "Unknown step op %S" op)))))

;;;; report

(defun e2e-finish (code)
  (dolist (k '("progress" "showMessages" "showMessageRequests" "showDocuments" "applyEdits"))
    (puthash k (apply #'vector (gethash k e2e-lists)) e2e-report))
  (let ((n (gethash "notifications" e2e-report)))
    (maphash (lambda (k v) (puthash k (apply #'vector v) n)) n))
  (dolist (b (buffer-list))
    (let ((f (buffer-file-name b)))
      (when (and f (string-prefix-p (concat e2e-root "/") f))
        (with-current-buffer b
          (puthash (substring f (1+ (length e2e-root))) (buffer-substring-no-properties (point-min) (point-max))
                   (gethash "documents" e2e-report))))))
  (puthash "elapsedMs" (round (* 1000 (- (float-time) e2e-t0))) e2e-report)
  (let ((json (json-serialize e2e-report :null-object :null :false-object :json-false))
        (coding-system-for-write 'no-conversion))
    (when (multibyte-string-p json) (setq json (encode-coding-string json 'utf-8)))  ; unibyte UTF-8 on Emacs 30
    (write-region json nil (getenv "E2E_REPORT") nil 'silent))
  (let ((log (getenv "E2E_LOG")))
    (when (and log (not (string-empty-p log)) (buffer-live-p e2e-events-buffer))
      (let ((coding-system-for-write 'utf-8-unix))
        (with-current-buffer e2e-events-buffer (write-region (point-min) (point-max) log nil 'silent)))))
  (let ((proc (and e2e-server (jsonrpc--process e2e-server))))  ; nothing may run while Emacs exits
    (when (process-live-p proc)
      (set-process-filter proc #'ignore)
      (set-process-sentinel proc #'ignore)
      (delete-process proc)))
  (kill-emacs code))

(condition-case err
    (progn
      (let ((i 0))
        (seq-doseq (s (gethash "steps" e2e-scenario))
          (condition-case err
              (e2e-step s)
            (error (error "step %d (%s%s): %s" (1+ i) (gethash "op" s)
                          (if (gethash "id" s) (concat " " (gethash "id" s)) "") (error-message-string err))))
          (setq i (1+ i))
          (puthash "stepsDone" i e2e-report)))
      (maphash (lambda (f _) (puthash f (e2e-diagnostics-as-seen f) (gethash "diagnostics" e2e-report)))
               (gethash "publishedDiagnostics" e2e-report))
      (dolist (b (buffer-list))
        (let ((f (buffer-file-name b)))
          (when (and f (string-prefix-p (concat e2e-root "/") f))
            (let ((rel (substring f (1+ (length e2e-root)))))
              (unless (gethash rel (gethash "diagnostics" e2e-report))
                (puthash rel (e2e-diagnostics-as-seen rel) (gethash "diagnostics" e2e-report)))))))
      (when e2e-server
        ;; `eglot-shutdown' sends shutdown + exit and then deletes the process at once (SIGKILL); send them on
        ;; eglot's connection first to see the server exit by itself, as LSP asks.
        (let ((proc (jsonrpc--process e2e-server)))
          (setf (eglot--shutdown-requested e2e-server) t)
          (jsonrpc-request e2e-server :shutdown nil)
          (jsonrpc-notify e2e-server :exit nil)
          (e2e-wait "the server to exit after shutdown + exit" (lambda () (not (process-live-p proc))))
          (puthash "serverExit" (e2e-obj "code" (process-exit-status proc)
                                         "signal" (if (eq (process-status proc) 'signal) (process-exit-status proc) :null))
                   e2e-report)))
      (e2e-finish 0))
  (error
   (puthash "error" (error-message-string err) e2e-report)
   (condition-case err2 (e2e-finish 1)
     (error (message "e2e: cannot write the report: %s" (error-message-string err2)) (kill-emacs 1)))))

;;; eglot.el ends here
