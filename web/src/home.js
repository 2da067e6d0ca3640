import { graphql } from "./api.js";

const WHO = `{ me { email globalRole } satellites(first: 1) { totalCount } }`;

async function show() {
  try {
    const data = await graphql(WHO);
    document.getElementById("who").textContent =
      `Signed in as ${data.me.email} (${data.me.globalRole.toLowerCase().replace("_", " ")})`;
    document.getElementById("fleet").textContent =
      `${data.satellites.totalCount} satellite(s) you may see.`;
    document.getElementById("logout").hidden = false;
  } catch (failure) {
    if (failure.code === "UNAUTHENTICATED") {
      location.assign("/login?next=/");
      return;
    }
    document.getElementById("who").textContent = failure.message;
  }
}

document.getElementById("logout").addEventListener("click", async () => {
  await graphql("mutation { logout }");
  location.assign("/login");
});

show();
