/* SPDX-License-Identifier: MIT */
/* Placeholder until the configuration tests land. */
int main(void)
{
    return 0;
}
