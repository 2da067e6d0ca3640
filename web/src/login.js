import { graphql, nextPath } from "./api.js";

const LOGIN = `mutation ($email: String!, $password: String!) {
  login(email: $email, password: $password) { user { email } } }`;

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const error = document.getElementById("error");
  error.textContent = "";
  try {
    await graphql(LOGIN, { email: form.get("email"), password: form.get("password") });
    location.assign(nextPath());
  } catch (failure) {
    error.textContent = failure.message;
  }
});
