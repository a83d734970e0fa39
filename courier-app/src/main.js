// The app's entry: the screens register their routes and words (one import per line: helpers add theirs), the bar
// is drawn, then the router draws the current screen. A device not enrolled yet starts on the enrollment screen.
import "./app.css";
import "./ui/screens/door.js";
import "./ui/screens/pickup.js";
import { start } from "./ui/router.js";
import { startBar } from "./ui/bar.js";
import { session } from "./ui/session.js";
import { isEnrolled } from "./core/device.js";
import { loadDepotTimeZone, startAutoSync } from "./core/sync.js";
import { installWorker } from "./ui/install.js";
import "./ui/codes.js";
import "./ui/screens/enroll.js";
import "./ui/screens/day.js";
import "./ui/screens/task.js";
import "./ui/screens/appointment.js";
import "./ui/screens/sync.js";
import "./ui/screens/settings.js";
import "./ui/screens/shift.js";
import "./ui/screens/checklist.js";
import "./ui/screens/violations.js";

async function boot() {
  const { store, api } = await session();
  await loadDepotTimeZone(store); // before the first screen draws a time
  if (!(await isEnrolled(store)) && !location.hash.startsWith("#/enroll")) location.hash = "/enroll";
  await startBar();
  await start();
  startAutoSync(store, api);
}

// Only in a build: the dev server has no /app/sw.js. First, so that even a failing boot leaves the app installable.
if (import.meta.env.PROD) installWorker();

boot();
