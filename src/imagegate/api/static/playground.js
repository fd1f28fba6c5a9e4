// imagegate playground: a thin client of the public /v1 API, nothing else.
// The key lives in localStorage only; tasks are created with "async": true and followed by
// polling their exact poll_url at the pace the server asks for (Retry-After).

const KEY_STORAGE = "imagegate.apiKey";
// A failed task's body carries no prompt, so the page remembers the prompts it submitted.
const PROMPT_STORAGE = "imagegate.prompts";
const PROMPT_MEMORY = 200;
const TERMINAL = new Set(["completed", "failed"]);
const FALLBACK_SIZES = ["256x256", "512x512", "768x768", "1024x1024", "1024x1536", "1536x1024",
  "1024x1792", "1792x1024"];
const DEFAULT_POLL_S = 3;   // the contract's default when a response names no Retry-After
const FIRST_POLL_S = 1;     // the create response suggests no pace; look again soon
const MAX_POLL_S = 60;
const FALLBACK_DEADLINE_S = 300; // the seeds' example of when a client gives up
const GALLERY_SIZE = 24;

const $ = (id) => document.getElementById(id);
const els = {
  keyForm: $("key-form"), key: $("api-key"), forget: $("forget-key"), keyNote: $("key-note"),
  form: $("generate-form"), prompt: $("prompt"), promptLength: $("prompt-length"),
  promptMax: $("prompt-max"), model: $("model"), size: $("size"), count: $("count"),
  description: $("model-description"), generate: $("generate"), formError: $("form-error"),
  current: $("current"), currentStatus: $("current-status"), currentDetail: $("current-detail"),
  currentError: $("current-error"), gallery: $("gallery"), empty: $("gallery-empty"),
  refresh: $("refresh"), template: $("card-template"),
};

const state = {
  key: localStorage.getItem(KEY_STORAGE) || "",
  models: new Map(),
  tasks: new Map(),
  pollers: new Map(),
  latest: null,
  prompts: loadPrompts(),
};

class ApiError extends Error {
  constructor(status, message, code, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function loadPrompts() {
  try {
    return JSON.parse(localStorage.getItem(PROMPT_STORAGE) || "{}");
  } catch {
    return {};
  }
}

function rememberPrompt(taskId, prompt) {
  state.prompts[taskId] = prompt;
  const ids = Object.keys(state.prompts);
  for (const old of ids.slice(0, Math.max(0, ids.length - PROMPT_MEMORY))) delete state.prompts[old];
  localStorage.setItem(PROMPT_STORAGE, JSON.stringify(state.prompts));
}

// Seconds from a Retry-After header (delta-seconds or an HTTP date), or null.
function retryAfter(response) {
  const value = response.headers.get("Retry-After");
  if (!value) return null;
  const seconds = /^\d+$/.test(value.trim())
    ? Number(value)
    : (Date.parse(value) - Date.now()) / 1000;
  return Number.isFinite(seconds) ? Math.min(Math.max(seconds, 1), MAX_POLL_S) : null;
}

async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const init = { method, signal, headers: { Authorization: `Bearer ${state.key}`, ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "The gateway could not be reached.", "network_error", null);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    throw new ApiError(response.status, error.message || `HTTP ${response.status}`,
      error.code || null, retryAfter(response));
  }
  return { data, retryAfter: retryAfter(response) };
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    }, { once: true });
  });
}

function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- key -------------------------------------------------------------------------------

function showKeyState() {
  els.key.value = state.key;
  els.forget.hidden = !state.key;
  els.keyNote.textContent = state.key ? "Saved in this browser only." : "Kept in this browser only.";
  els.refresh.disabled = !state.key;
}

function keyRejected(err) {
  if (err.status !== 401) return false;
  els.keyNote.textContent = `Key rejected: ${err.message}`;
  els.keyNote.classList.add("bad");
  return true;
}

async function useKey(key) {
  state.key = key;
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
  els.keyNote.classList.remove("bad");
  for (const ctrl of state.pollers.values()) ctrl.abort();
  state.pollers.clear();
  state.tasks.clear();
  els.gallery.replaceChildren();
  showKeyState();
  if (!key) {
    resetModels("Save a key to load models");
    updateEmpty();
    return;
  }
  await Promise.all([loadModels(), loadTasks()]);
}

// ---- models ----------------------------------------------------------------------------

function resetModels(message) {
  els.model.replaceChildren(new Option(message, ""));
  for (const el of [els.model, els.size, els.count, els.generate]) el.disabled = true;
  els.size.replaceChildren();
  els.description.textContent = "";
}

async function loadModels() {
  resetModels("Loading models…");
  try {
    const { data } = await api("/v1/models");
    state.models = new Map(data.data.map((m) => [m.id, m]));
  } catch (err) {
    resetModels("Models unavailable");
    if (!keyRejected(err)) showFormError(err);
    return;
  }
  els.model.replaceChildren(...[...state.models.keys()].map((id) => new Option(id, id)));
  els.model.disabled = els.generate.disabled = state.models.size === 0;
  applyModel();
}

function sizesFor(caps) {
  if (Array.isArray(caps.sizes) && caps.sizes.length) return caps.sizes;
  const fits = (size) => size.split("x").map(Number)
    .every((side) => side >= (caps.min_side ?? 0) && side <= (caps.max_side ?? Infinity));
  const sizes = FALLBACK_SIZES.filter(fits);
  if (caps.default_size && !sizes.includes(caps.default_size)) sizes.unshift(caps.default_size);
  return sizes;
}

function applyModel() {
  const model = state.models.get(els.model.value);
  const caps = (model && model.imagegate) || {};
  const sizes = sizesFor(caps);
  els.size.replaceChildren(...sizes.map((s) => new Option(s.replace("x", " × "), s)));
  els.size.value = sizes.includes(caps.default_size) ? caps.default_size : sizes[0] || "";
  els.size.disabled = sizes.length === 0;
  const maxN = Math.min(caps.max_n || 1, 4);
  els.count.replaceChildren(...Array.from({ length: maxN }, (_, i) => new Option(String(i + 1))));
  els.count.disabled = maxN < 2;
  const maxLength = caps.max_prompt_length || 4000;
  els.prompt.maxLength = maxLength;
  els.promptMax.textContent = maxLength;
  els.description.textContent = caps.description || "";
}

// ---- tasks -----------------------------------------------------------------------------

async function loadTasks() {
  try {
    const { data } = await api(`/v1/tasks?limit=${GALLERY_SIZE}`);
    for (const task of data.data.slice().reverse()) track(task);
  } catch (err) {
    if (!keyRejected(err)) showFormError(err);
  }
  updateEmpty();
}

function track(task, pollAfter) {
  state.tasks.set(task.id, task);
  renderCard(task);
  if (!TERMINAL.has(task.status)) follow(task, pollAfter ?? DEFAULT_POLL_S);
  if (task.id === state.latest) renderLatest(task);
}

// Poll the task's own poll_url until it is terminal, at the server's pace.
async function follow(task, firstWait) {
  if (state.pollers.has(task.id)) return;
  const ctrl = new AbortController();
  state.pollers.set(task.id, ctrl);
  const model = state.models.get(task.model);
  const deadlineS = (model && model.imagegate && model.imagegate.deadline_s) || FALLBACK_DEADLINE_S;
  const giveUpAt = Date.now() + (deadlineS + 30) * 1000;
  const url = task.poll_url || `/v1/tasks/${encodeURIComponent(task.id)}`;
  let wait = firstWait;
  try {
    while (!TERMINAL.has(task.status)) {
      if (Date.now() + wait * 1000 > giveUpAt) {
        setCardNote(task.id, "Stopped waiting: the task took longer than its deadline.");
        break;
      }
      await sleep(wait * 1000, ctrl.signal);
      try {
        const result = await api(url, { signal: ctrl.signal });
        task = result.data;
        wait = result.retryAfter ?? DEFAULT_POLL_S;
        state.tasks.set(task.id, task);
        renderCard(task);
        if (task.id === state.latest) renderLatest(task);
      } catch (err) {
        if (err.name === "AbortError") return;
        if (err.status === 401 || err.status === 404) {
          keyRejected(err);
          setCardNote(task.id, err.message);
          break;
        }
        wait = err.retryAfter ?? Math.min(wait * 2, MAX_POLL_S);
      }
    }
  } finally {
    if (state.pollers.get(task.id) === ctrl) state.pollers.delete(task.id);
  }
}

async function submit(event) {
  event.preventDefault();
  hideFormError();
  const prompt = els.prompt.value.trim();
  if (!prompt) {
    showFormError({ message: "Type a prompt first.", code: null });
    els.prompt.focus();
    return;
  }
  const body = { model: els.model.value, prompt, n: Number(els.count.value || 1), async: true };
  if (els.size.value) body.size = els.size.value;
  els.generate.disabled = true;
  els.generate.textContent = "Submitting…";
  try {
    const { data, retryAfter: pace } = await api("/v1/images/generations", {
      method: "POST", body, headers: { "Idempotency-Key": idempotencyKey() },
    });
    rememberPrompt(data.id, prompt);
    state.latest = data.id;
    track(data, pace ?? FIRST_POLL_S);
    renderLatest(data);
    updateEmpty();
  } catch (err) {
    if (!keyRejected(err)) showFormError(err);
  } finally {
    els.generate.disabled = false;
    els.generate.textContent = "Generate";
  }
}

async function cancel(taskId, button) {
  button.disabled = true;
  try {
    const { data } = await api(`/v1/tasks/${encodeURIComponent(taskId)}`, { method: "DELETE" });
    state.pollers.get(taskId)?.abort();
    track(data);
  } catch (err) {
    setCardNote(taskId, err.message);
    button.disabled = false;
  }
}

// ---- rendering -------------------------------------------------------------------------

const STATUS_TEXT = {
  pending: "Pending", processing: "Processing", completed: "Completed", failed: "Failed",
};

function promptOf(task) {
  return state.prompts[task.id] || (task.data && task.data[0] && task.data[0].revised_prompt) || "";
}

function statusBadge(el, task) {
  el.textContent = task.cancelled ? "Cancelled" : STATUS_TEXT[task.status] || task.status;
  el.dataset.status = task.cancelled ? "cancelled" : task.status;
}

function renderLatest(task) {
  els.current.hidden = false;
  statusBadge(els.currentStatus, task);
  const bits = [];
  if (task.queue_position != null) bits.push(`position ${task.queue_position} in queue`);
  if (task.progress != null) bits.push(`${task.progress}%`);
  bits.push(`task ${task.id}`);
  els.currentDetail.textContent = bits.join(" · ");
  const failed = task.status === "failed";
  els.currentError.hidden = !failed;
  if (failed) showError(els.currentError, task.error || "Image generation failed.", task.error_code);
}

// A message and, beside it, the machine code a person can search for or report.
function showError(el, message, code) {
  el.hidden = false;
  el.replaceChildren(document.createTextNode(message));
  if (code) {
    const tag = document.createElement("code");
    tag.className = "error-code";
    tag.textContent = code;
    el.append(" ", tag);
  }
}

function cardFor(task) {
  let card = els.gallery.querySelector(`[data-task-id="${CSS.escape(task.id)}"]`);
  if (!card) {
    card = els.template.content.firstElementChild.cloneNode(true);
    card.dataset.taskId = task.id;
    card.querySelector(".card-cancel").addEventListener("click", (e) => cancel(task.id, e.target));
    els.gallery.prepend(card);
  }
  return card;
}

function renderCard(task) {
  const card = cardFor(task);
  const prompt = promptOf(task);
  card.dataset.status = task.status;
  card.querySelector(".card-prompt").textContent = prompt || "Prompt not available";
  statusBadge(card.querySelector(".status"), task);
  const time = card.querySelector("time");
  time.dateTime = new Date(task.created * 1000).toISOString();
  time.title = new Date(task.created * 1000).toLocaleString();
  time.textContent = relativeTime(task.created);
  const error = card.querySelector(".card-error");
  error.hidden = task.status !== "failed";
  if (task.status === "failed") {
    showError(error, task.error || "Image generation failed.", task.error_code);
  }
  card.querySelector(".card-cancel").hidden = TERMINAL.has(task.status);
  renderMedia(card.querySelector(".card-media"), task, prompt);
}

function renderMedia(media, task, prompt) {
  const urls = task.status === "completed" ? task.data.map((d) => d.url).filter(Boolean) : [];
  const key = urls.length ? urls.join(" ") : task.status;
  if (media.dataset.key === key) return; // unchanged: keep the loaded images
  media.dataset.key = key;
  media.classList.toggle("multi", urls.length > 1);
  if (!urls.length) {
    const placeholder = document.createElement("div");
    placeholder.className = `placeholder ${task.status}`;
    placeholder.textContent = task.status === "failed" ? "No image" : "Generating…";
    media.replaceChildren(placeholder);
    return;
  }
  media.replaceChildren(...urls.map((url, i) => {
    const link = document.createElement("a");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    const img = document.createElement("img");
    img.src = url;
    img.alt = prompt ? `Generated image ${i + 1} of ${urls.length}: ${prompt}` : "Generated image";
    img.loading = "lazy";
    img.decoding = "async";
    link.append(img);
    return link;
  }));
}

function setCardNote(taskId, message) {
  const card = els.gallery.querySelector(`[data-task-id="${CSS.escape(taskId)}"]`);
  if (!card) return;
  showError(card.querySelector(".card-error"), message, null);
}

function relativeTime(seconds) {
  const delta = Math.round(seconds - Date.now() / 1000);
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const abs = Math.abs(delta);
  if (abs < 45) return "just now";
  if (abs < 3600) return format.format(Math.round(delta / 60), "minute");
  if (abs < 86400) return format.format(Math.round(delta / 3600), "hour");
  return new Date(seconds * 1000).toLocaleString();
}

function updateEmpty() {
  els.empty.hidden = els.gallery.children.length > 0;
  els.empty.textContent = state.key ? "No tasks yet." : "Save an API key to see your tasks.";
}

function showFormError(err) {
  showError(els.formError, err.message, err.code);
}

function hideFormError() {
  els.formError.hidden = true;
  els.formError.textContent = "";
}

// ---- wiring ----------------------------------------------------------------------------

els.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  useKey(els.key.value.trim());
});
els.forget.addEventListener("click", () => useKey(""));
els.form.addEventListener("submit", submit);
els.model.addEventListener("change", applyModel);
els.refresh.addEventListener("click", () => useKey(state.key));
els.prompt.addEventListener("input", () => {
  els.promptLength.textContent = els.prompt.value.length;
});
els.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.metaKey || event.ctrlKey)) els.form.requestSubmit();
});
setInterval(() => {
  for (const task of state.tasks.values()) {
    const time = els.gallery.querySelector(`[data-task-id="${CSS.escape(task.id)}"] time`);
    if (time) time.textContent = relativeTime(task.created);
  }
}, 30_000);

showKeyState();
useKey(state.key);
