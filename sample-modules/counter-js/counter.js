// `counter-js` (keyed): the Rust `counter` in JavaScript, built with
// componentize-js. Same commands (`incr`, `get`), same decimal replies, same
// snapshot format (the value as decimal text), so one can replace the other in
// a hot swap with state carried.
//
// Errors: a `result<_, error>` export returns Err when the function throws the
// error variant as a plain object ({ tag, val }); `restore` (result<_, string>)
// throws a string. Throwing an `Error` object would trap instead.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

let value = 0;

export const actor = {
  // console.log and console.error reach the node's log and `anthill logs`.
  init(key) {
    console.log(`counter-js ${key} started`);
  },

  onMessage(_from, message) {
    const text = decoder.decode(message);
    if (text === "incr") {
      value += 1;
      return encoder.encode(String(value));
    }
    if (text === "get") {
      return encoder.encode(String(value));
    }
    console.error(`counter-js: unknown command \`${text}\``);
    throw { tag: "rejected", val: `counter understands \`incr\` and \`get\`, not \`${text}\`` };
  },

  onEvent(_topic, _event) {},
  onJoin(_player) {},
  onLeave(_player) {},
  onTick(_nowMs) {},
  onTimer(_tag) {},

  snapshot() {
    return encoder.encode(String(value));
  },

  restore(state, _fromVersion) {
    const text = decoder.decode(state).trim();
    if (!/^[0-9]+$/.test(text)) {
      throw `snapshot \`${text}\` is not a decimal counter`;
    }
    value = Number(text);
  },
};
