// The skeleton editor of pcdms serve: a pcdms pose (props.value) drawn as an SVG whose 18 joints can be
// dragged. Double-clicking a joint removes it (it stays as a hollow ring) or puts it back. The page reads the
// edited pose from props.value; it is written once a drag ends, so that a drag is one change.
// Runs as gr.HTML's js_on_load, with element, props, trigger and watch given.
const SVG = "http://www.w3.org/2000/svg";
const names = props.names, limbs = props.limbs, colors = props.colors, standing = props.standing;
const remembered = {};  // where a removed joint was, so that putting it back puts it there

function make(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

function place(pose, index) {
  const point = pose.keypoints[names[index]];
  if (point) return [point[0], point[1]];
  if (remembered[index]) return remembered[index];
  const [width, height] = pose.image_size;
  return [standing[index][0] * (width - 1), standing[index][1] * (height - 1)];
}

function render() {
  const pose = props.value;
  element.replaceChildren();
  if (!pose || !pose.keypoints) return;
  const [width, height] = pose.image_size;
  const radius = Math.max(width, height) / 45;
  const svg = make("svg", {viewBox: `0 0 ${width} ${height}`, class: "pose-canvas", role: "img",
                           "aria-label": "target pose: drag the joints"});
  svg.appendChild(make("rect", {x: 0, y: 0, width, height, class: "pose-frame"}));
  const points = names.map((_, index) => place(pose, index));
  limbs.forEach(([start, end], limb) => {
    if (!pose.keypoints[names[start]] || !pose.keypoints[names[end]]) return;
    svg.appendChild(make("line", {x1: points[start][0], y1: points[start][1], x2: points[end][0], y2: points[end][1],
                                  stroke: colors[limb], "stroke-width": radius * 0.9, "stroke-opacity": 0.7,
                                  "data-limb": limb}));
  });
  names.forEach((name, index) => {
    const present = Boolean(pose.keypoints[name]);
    const joint = make("circle", {cx: points[index][0], cy: points[index][1], r: radius,
                                  fill: present ? colors[index] : "none", stroke: colors[index],
                                  "stroke-width": radius * 0.35, "stroke-dasharray": present ? "" : radius * 0.5,
                                  class: present ? "joint" : "joint absent", "data-joint": index});
    joint.appendChild(make("title", {})).textContent = name.replace("_", " ") + (present ? "" : " (removed)");
    svg.appendChild(joint);
  });
  element.appendChild(svg);
  const counter = document.createElement("p");
  counter.className = "pose-count";
  const count = names.filter((name) => pose.keypoints[name]).length;
  counter.textContent = `${count} of ${names.length} joints · drag a joint to move it, double-click to remove or restore it`;
  element.appendChild(counter);
}

function commit(pose) {
  props.value = pose;
  render();
  trigger("change");
}

function edited(mutate) {
  const pose = structuredClone(props.value);
  mutate(pose);
  commit(pose);
}

let drag = null;
element.addEventListener("pointerdown", (event) => {
  const joint = event.target.closest("[data-joint]");
  if (!joint) return;
  event.preventDefault();
  const svg = joint.ownerSVGElement;
  joint.setPointerCapture(event.pointerId);
  drag = {joint, svg, index: Number(joint.dataset.joint), moved: false};
});
element.addEventListener("pointermove", (event) => {
  if (!drag) return;
  const [width, height] = props.value.image_size;
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(drag.svg.getScreenCTM().inverse());
  drag.x = Math.min(Math.max(point.x, 0), width - 1);
  drag.y = Math.min(Math.max(point.y, 0), height - 1);
  drag.moved = true;
  drag.joint.setAttribute("cx", drag.x);
  drag.joint.setAttribute("cy", drag.y);
  for (const line of drag.svg.querySelectorAll("line")) {
    const [start, end] = limbs[Number(line.dataset.limb)];
    if (start === drag.index) { line.setAttribute("x1", drag.x); line.setAttribute("y1", drag.y); }
    if (end === drag.index) { line.setAttribute("x2", drag.x); line.setAttribute("y2", drag.y); }
  }
});
function endDrag() {
  if (!drag) return;
  const {index, x, y, moved} = drag;
  drag = null;
  if (!moved) return;
  edited((pose) => {
    const name = names[index];
    if (pose.keypoints[name]) pose.keypoints[name] = [x, y, pose.keypoints[name][2]];
    else remembered[index] = [x, y];
  });
}
element.addEventListener("pointerup", endDrag);
element.addEventListener("pointercancel", endDrag);
element.addEventListener("dblclick", (event) => {
  const joint = event.target.closest("[data-joint]");
  if (!joint) return;
  const index = Number(joint.dataset.joint);
  edited((pose) => {
    const name = names[index];
    if (pose.keypoints[name]) {
      remembered[index] = pose.keypoints[name].slice(0, 2);
      pose.keypoints[name] = null;
    } else {
      pose.keypoints[name] = [...place(pose, index), 1];
    }
  });
});
watch("value", render);
render();
